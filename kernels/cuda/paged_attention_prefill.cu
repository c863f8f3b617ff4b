// Tensor-core paged causal attention for prefill: FlashAttention-2 style row tiles, mma.sync bf16, cp.async K/V.
#include "kernels/cuda/paged_attention_prefill.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"

namespace octet::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;           // per CTA, 16 rows each
constexpr int kRows = 16 * kWarps;  // rows per CTA
constexpr int kThreads = kWarp * kWarps;
constexpr float kLog2e = 1.4426950408889634f;

struct Params {
  const float* q;
  const void* k_cache;
  const void* v_cache;
  const float* k_scale;
  const float* v_scale;
  const int32_t* query_start;
  const int32_t* context_lens;
  const int32_t* block_tables;
  int64_t max_blocks;
  int q_heads, kv_heads, head_dim, block_size, group;
  int block_shift;   // log2(block_size) when a power of two, else -1
  int tiles;         // row tiles per sequence in the grid (from max_query_len)
  float scale_log2;  // scale * log2(e): scores go to exp2
  float* out;
};

// Shared memory of one CTA (bytes): Q, K and V tiles as bf16 rows padded by 16 bytes (conflict-free ldmatrix), and
// for an FP8 cache a staging buffer of codes plus the tile's K scales, V scales and staged scales.
template <int kD, int kN, bool kFp8>
struct Smem {
  static constexpr int kStride = kD + 8;  // bf16 elements per row
  static constexpr int kQ = kRows * kStride * 2;
  static constexpr int kKv = kN * kStride * 2;
  static constexpr int kStage = kFp8 ? kN * kD : 0;
  static constexpr int kScales = kFp8 ? 3 * kN * 4 : 0;
  static constexpr int kTotal = kQ + 2 * kKv + kStage + kScales;
};

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// cp.async of 16 (or 4) bytes; invalid copies write zeros and read nothing.
__device__ __forceinline__ void CpAsync16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void CpAsync4(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void CpAsyncWaitAll() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

__device__ __forceinline__ void Ldsm4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void Ldsm4T(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a * b: m16n8k16, bf16 inputs, fp32 accumulate.
__device__ __forceinline__ void Mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats to bf16 (round to nearest even), lo in the low half.
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// Two E4M3 codes (low byte first) -> exact f16 -> fp32 -> bf16 (exact: E4M3 values are bf16 values).
__device__ __forceinline__ uint32_t Fp8x2ToBf16x2(uint32_t two) {
  const __half2 h(__nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two & 0xffffu), __NV_E4M3));
  const float2 f = __half22float2(h);
  return PackBf16(f.x, f.y);
}

// The cache slot of key position pos of a sequence (block table row `table`).
__device__ __forceinline__ int64_t Slot(const int32_t* __restrict__ table, int pos, const Params& p) {
  const int blk = p.block_shift >= 0 ? pos >> p.block_shift : pos / p.block_size;
  return static_cast<int64_t>(table[blk]) * p.block_size + (pos - blk * p.block_size);
}

// Issues the cp.async copies of keys (or values) kb .. kb + nk - 1 of sequence table, kv head g: bf16 straight into
// dst [kN][kStride]; FP8 codes into stage [kN][kD] and their scales into sscale [kN]. Zeros past nk and head_dim.
template <typename T, int kD, int kN>
__device__ __forceinline__ void IssueTile(const T* __restrict__ cache, const float* __restrict__ scales,
                                          const int32_t* __restrict__ table, int kb, int nk, int g, const Params& p,
                                          uint16_t* dst, uint8_t* stage, float* sscale) {
  constexpr bool kFp8 = std::is_same_v<T, uint8_t>;
  constexpr int kPerChunk = 16 / static_cast<int>(sizeof(T));
  constexpr int kChunksPerKey = kD / kPerChunk;
  constexpr int kStride = kD + 8;
  const int tid = static_cast<int>(threadIdx.x);
#pragma unroll 4
  for (int i = tid; i < kN * kChunksPerKey; i += kThreads) {
    const int key = i / kChunksPerKey, d = (i % kChunksPerKey) * kPerChunk;
    const bool valid = key < nk && d < p.head_dim;
    const T* src = cache;
    if (valid) {
      src = cache + (Slot(table, kb + key, p) * p.kv_heads + g) * p.head_dim + d;
    }
    if constexpr (kFp8) {
      CpAsync16(SmemAddr(stage + key * kD + d), src, valid);
    } else {
      CpAsync16(SmemAddr(dst + key * kStride + d), src, valid);
    }
  }
  if constexpr (kFp8) {
    for (int key = tid; key < kN; key += kThreads) {
      const bool valid = key < nk;
      const float* src = scales;
      if (valid) {
        src = scales + Slot(table, kb + key, p) * p.kv_heads + g;
      }
      CpAsync4(SmemAddr(sscale + key), src, valid);
    }
  }
}

// FP8 only: widens the staged codes to bf16 rows of dst and copies the staged scales (times mult) to dst_scale.
template <int kD, int kN>
__device__ __forceinline__ void WidenStage(const uint8_t* stage, const float* sstage, float mult, uint16_t* dst,
                                           float* dst_scale) {
  constexpr int kStride = kD + 8;
  const int tid = static_cast<int>(threadIdx.x);
#pragma unroll 4
  for (int i = tid; i < kN * kD / 8; i += kThreads) {
    const int key = i / (kD / 8), d = (i % (kD / 8)) * 8;
    const uint2 u = *reinterpret_cast<const uint2*>(stage + key * kD + d);
    uint4 o;
    o.x = Fp8x2ToBf16x2(u.x);
    o.y = Fp8x2ToBf16x2(u.x >> 16);
    o.z = Fp8x2ToBf16x2(u.y);
    o.w = Fp8x2ToBf16x2(u.y >> 16);
    *reinterpret_cast<uint4*>(dst + key * kStride + d) = o;
  }
  for (int key = tid; key < kN; key += kThreads) dst_scale[key] = sstage[key] * mult;
}

// One CTA: row tile (gridDim.x / kv_heads - 1 - blockIdx.x / kv_heads) of sequence blockIdx.y, kv head
// blockIdx.x % kv_heads. kN keys per tile.
template <typename T, int kD, int kN>
__global__ void __launch_bounds__(kThreads) PrefillKernel(const Params p) {
  constexpr bool kFp8 = std::is_same_v<T, uint8_t>;
  using S = Smem<kD, kN, kFp8>;
  constexpr int kStride = S::kStride;
  constexpr bool kQInRegs = kD <= 128;
  constexpr int kKSteps = kD / 16;  // QK^T k-steps over head_dim
  constexpr int kNb = kN / 8;       // score n-blocks
  constexpr int kDb = kD / 8;       // output n-blocks
  static_assert(kN % 16 == 0 && kD % 16 == 0, "tile shapes");

  const int g = static_cast<int>(blockIdx.x) % p.kv_heads;
  const int tile = p.tiles - 1 - static_cast<int>(blockIdx.x) / p.kv_heads;  // latest rows (most keys) first
  const int b = static_cast<int>(blockIdx.y);
  const int q0 = p.query_start[b];
  const int n = p.query_start[b + 1] - q0;
  const int rows_b = n * p.group;
  const int row0 = tile * kRows;
  if (row0 >= rows_b) return;
  const int ctx = p.context_lens[b];
  const int causal0 = ctx - n;  // row r of the sequence (query r / group) sees keys 0 .. causal0 + r / group
  const int last_row = min(row0 + kRows, rows_b) - 1;
  const int kv_end = min(ctx, causal0 + last_row / p.group + 1);

  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* sq = reinterpret_cast<uint16_t*>(smem);
  uint16_t* sk = reinterpret_cast<uint16_t*>(smem + S::kQ);
  uint16_t* sv = reinterpret_cast<uint16_t*>(smem + S::kQ + S::kKv);
  uint8_t* stage = smem + S::kQ + 2 * S::kKv;
  float* sks = reinterpret_cast<float*>(smem + S::kQ + 2 * S::kKv + S::kStage);  // k_scale * scale_log2
  float* svs = sks + kN;
  float* sst = svs + kN;  // staged scales

  const int tid = static_cast<int>(threadIdx.x);
  const int warp = tid / kWarp, lane = tid % kWarp;
  const int gq = lane >> 2, tq = lane & 3;  // mma fragment row group and thread-in-group
  const int32_t* table = p.block_tables + static_cast<int64_t>(b) * p.max_blocks;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);

  // The first K tile's copies fly while Q is rounded to bf16.
  IssueTile<T, kD, kN>(kc, p.k_scale, table, 0, min(kN, kv_end), g, p, sk, stage, sst);
  CpAsyncCommit();
  for (int i = tid; i < kRows * (kD / 4); i += kThreads) {
    const int r = i / (kD / 4), c = (i % (kD / 4)) * 4;
    const int row = row0 + r;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (row < rows_b && c < p.head_dim) {
      const int64_t token = q0 + row / p.group;
      const int64_t head = static_cast<int64_t>(g) * p.group + row % p.group;
      v = __ldg(reinterpret_cast<const float4*>(p.q + (token * p.q_heads + head) * p.head_dim + c));
    }
    *reinterpret_cast<uint2*>(sq + r * kStride + c) = make_uint2(PackBf16(v.x, v.y), PackBf16(v.z, v.w));
  }

  // This thread's two rows (gq and gq + 8 of the warp's 16): their last visible key, -1 for padding rows.
  int last[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = row0 + warp * 16 + gq + 8 * i;
    last[i] = row < rows_b ? causal0 + row / p.group : -1;
  }
  const int warp_row0 = row0 + warp * 16;
  const int warp_last = warp_row0 < rows_b ? causal0 + (min(warp_row0 + 15, rows_b - 1)) / p.group : -1;

  // ldmatrix lane addresses: A (Q) rows lane & 15, columns (lane >> 4) * 8; B (K) keys (lane >> 4) * 8 + (lane & 7),
  // columns ((lane >> 3) & 1) * 8; B (V, transposed) keys ((lane >> 3) & 1) * 8 + (lane & 7), columns (lane >> 4) * 8.
  const uint32_t qa = SmemAddr(sq + (warp * 16 + (lane & 15)) * kStride + (lane >> 4) * 8);
  const uint32_t ka = SmemAddr(sk + ((lane >> 4) * 8 + (lane & 7)) * kStride + ((lane >> 3) & 1) * 8);
  const uint32_t va = SmemAddr(sv + (((lane >> 3) & 1) * 8 + (lane & 7)) * kStride + (lane >> 4) * 8);

  __syncthreads();  // sq written
  uint32_t qf[kQInRegs ? kKSteps : 1][4];
  if constexpr (kQInRegs) {
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) Ldsm4(qa + ks * 32, qf[ks]);
  }

  float o[kDb][4];
#pragma unroll
  for (int j = 0; j < kDb; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  const int n_tiles = (kv_end + kN - 1) / kN;
  for (int it = 0; it < n_tiles; ++it) {
    const int kb = it * kN;
    CpAsyncWaitAll();
    __syncthreads();  // K tile landed; every warp is done with the previous tile's V
    if constexpr (kFp8) {
      WidenStage<kD, kN>(stage, sst, p.scale_log2, sk, sks);
      __syncthreads();
    }
    IssueTile<T, kD, kN>(vc, p.v_scale, table, kb, min(kN, kv_end - kb), g, p, sv, stage, sst);
    CpAsyncCommit();

    const bool active = kb <= warp_last;  // warp-uniform: some row of the warp sees a key of this tile
    float s[kNb][4];
#pragma unroll
    for (int j = 0; j < kNb; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    if (active) {
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) {
        uint32_t a[4];
        if constexpr (kQInRegs) {
#pragma unroll
          for (int e = 0; e < 4; ++e) a[e] = qf[ks][e];
        } else {
          Ldsm4(qa + ks * 32, a);
        }
#pragma unroll
        for (int np = 0; np < kN / 16; ++np) {
          uint32_t bk[4];
          Ldsm4(ka + np * 16 * kStride * 2 + ks * 32, bk);
          Mma(s[2 * np], a, bk[0], bk[1]);
          Mma(s[2 * np + 1], a, bk[2], bk[3]);
        }
      }
    }

    CpAsyncWaitAll();
    __syncthreads();  // V tile landed; every warp is done with K
    if constexpr (kFp8) {
      WidenStage<kD, kN>(stage, sst, 1.0f, sv, svs);
      __syncthreads();
    }
    if (it + 1 < n_tiles) {
      IssueTile<T, kD, kN>(kc, p.k_scale, table, kb + kN, min(kN, kv_end - kb - kN), g, p, sk, stage, sst);
      CpAsyncCommit();
    }
    if (!active) continue;

    // Scale, mask, online softmax. Element e of n-block j: row gq + 8 (e >> 1), key kb + 8 j + 2 tq + (e & 1).
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = 8 * j + 2 * tq + (e & 1);
        const float mult = kFp8 ? sks[key] : p.scale_log2;
        const float x = kb + key <= last[e >> 1] ? s[j][e] * mult : -INFINITY;
        s[j][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    }
    float corr[2], base[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      base[i] = mx[i] == -INFINITY ? 0.0f : mx[i];  // a row with nothing visible yet keeps zeros
      corr[i] = exp2f(m[i] - base[i]);
      m[i] = mx[i];
    }
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = exp2f(s[j][e] - base[e >> 1]);
        sum[e >> 1] += s[j][e];
      }
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) l[i] = l[i] * corr[i] + sum[i];         // this thread's share; the quad sums at the end
    if (__any_sync(0xffffffffu, corr[0] != 1.0f || corr[1] != 1.0f)) {  // some row's max moved
#pragma unroll
      for (int j = 0; j < kDb; ++j) {
        o[j][0] *= corr[0];
        o[j][1] *= corr[0];
        o[j][2] *= corr[1];
        o[j][3] *= corr[1];
      }
    }

    // O += P V: P's A fragment for keys 16 kk .. +15 is score n-blocks 2 kk and 2 kk + 1.
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
      float w[2][2];  // v scale of keys 16 kk + 8 h + 2 tq + c
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int c = 0; c < 2; ++c) w[h][c] = kFp8 ? svs[16 * kk + 8 * h + 2 * tq + c] : 1.0f;
      }
      const float* s0 = s[2 * kk];
      const float* s1 = s[2 * kk + 1];
      const uint32_t a[4] = {PackBf16(s0[0] * w[0][0], s0[1] * w[0][1]), PackBf16(s0[2] * w[0][0], s0[3] * w[0][1]),
                             PackBf16(s1[0] * w[1][0], s1[1] * w[1][1]), PackBf16(s1[2] * w[1][0], s1[3] * w[1][1])};
#pragma unroll
      for (int np = 0; np < kD / 16; ++np) {
        uint32_t bv[4];
        Ldsm4T(va + kk * 16 * kStride * 2 + np * 32, bv);
        Mma(o[2 * np], a, bv[0], bv[1]);
        Mma(o[2 * np + 1], a, bv[2], bv[3]);
      }
    }
  }

  // Epilogue: the quad's partial sums, then out = O / l for the real rows.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
  }
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = row0 + warp * 16 + gq + 8 * i;
    if (row >= rows_b) continue;
    const int64_t token = q0 + row / p.group;
    const int64_t head = static_cast<int64_t>(g) * p.group + row % p.group;
    float* out = p.out + (token * p.q_heads + head) * p.head_dim;
    const float inv = 1.0f / l[i];
#pragma unroll
    for (int j = 0; j < kDb; ++j) {
      const int col = 8 * j + 2 * tq;
      if (col < p.head_dim) {
        *reinterpret_cast<float2*>(out + col) = make_float2(o[j][2 * i] * inv, o[j][2 * i + 1] * inv);
      }
    }
  }
}

bool ShapeOk(const PagedAttentionArgs& a) {
  constexpr int64_t kIntMax = 0x7fffffff;
  return (a.cache_dtype == KvCacheDType::kBF16 || a.cache_dtype == KvCacheDType::kFp8E4M3) && a.num_seqs >= 0 &&
         a.num_seqs <= 65535 && a.num_tokens >= 0 && a.q_heads > 0 && a.kv_heads > 0 && a.q_heads % a.kv_heads == 0 &&
         a.head_dim >= 16 && a.head_dim <= 256 && a.head_dim % 16 == 0 && a.block_size > 0 && a.block_size <= kIntMax &&
         a.max_blocks >= 0 && a.num_tokens * a.q_heads <= kIntMax &&
         a.max_query_len <= kIntMax / (a.q_heads / a.kv_heads) - kRows;
}

template <typename T, int kD, int kN>
cudaError_t Launch(const Params& p, int num_seqs, cudaStream_t stream) {
  constexpr int smem = Smem<kD, kN, std::is_same_v<T, uint8_t>>::kTotal;
  auto kernel = PrefillKernel<T, kD, kN>;
  CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const int64_t gx = static_cast<int64_t>(p.tiles) * p.kv_heads;
  if (gx > 0x7fffffff) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(num_seqs));
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t Dispatch(const Params& p, int num_seqs, cudaStream_t stream) {
  if (p.head_dim <= 64) return Launch<T, 64, 64>(p, num_seqs, stream);
  if (p.head_dim <= 128) return Launch<T, 128, 64>(p, num_seqs, stream);
  return Launch<T, 256, 32>(p, num_seqs, stream);
}

bool Aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

bool PagedAttentionPrefillSupports(const PagedAttentionArgs& args) {
  return ShapeOk(args) && args.max_query_len >= kPagedAttentionPrefillMinQueryLen;
}

size_t PagedAttentionPrefillWorkspaceBytes(const PagedAttentionArgs& /*args*/) { return 0; }

cudaError_t PagedAttentionPrefill(const PagedAttentionArgs& args, cudaStream_t stream) {
  if (!ShapeOk(args)) return cudaErrorInvalidValue;
  if (args.num_seqs == 0 || args.num_tokens == 0) return cudaSuccess;
  if (args.max_query_len <= 0 || args.max_context_len < args.max_query_len) return cudaErrorInvalidValue;
  if (!Aligned16(args.q) || !Aligned16(args.k_cache) || !Aligned16(args.v_cache) || args.out == nullptr ||
      args.query_start == nullptr || args.context_lens == nullptr || args.block_tables == nullptr) {
    return cudaErrorInvalidValue;
  }
  const bool fp8 = args.cache_dtype == KvCacheDType::kFp8E4M3;
  if (fp8 && (args.k_scale == nullptr || args.v_scale == nullptr)) return cudaErrorInvalidValue;
  Params p{};
  p.q = args.q;
  p.k_cache = args.k_cache;
  p.v_cache = args.v_cache;
  p.k_scale = args.k_scale;
  p.v_scale = args.v_scale;
  p.query_start = args.query_start;
  p.context_lens = args.context_lens;
  p.block_tables = args.block_tables;
  p.max_blocks = args.max_blocks;
  p.q_heads = static_cast<int>(args.q_heads);
  p.kv_heads = static_cast<int>(args.kv_heads);
  p.head_dim = static_cast<int>(args.head_dim);
  p.block_size = static_cast<int>(args.block_size);
  p.group = static_cast<int>(args.q_heads / args.kv_heads);
  p.block_shift = -1;
  for (int sh = 0; sh < 31; ++sh) {
    if ((int64_t{1} << sh) == args.block_size) p.block_shift = sh;
  }
  p.tiles = static_cast<int>((static_cast<int64_t>(args.max_query_len) * p.group + kRows - 1) / kRows);
  p.scale_log2 = args.scale * kLog2e;
  p.out = args.out;
  const int num_seqs = static_cast<int>(args.num_seqs);
  return fp8 ? Dispatch<uint8_t>(p, num_seqs, stream) : Dispatch<uint16_t>(p, num_seqs, stream);
}

}  // namespace octet::cuda
