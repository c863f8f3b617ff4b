// Paged causal attention: a layout prologue, a split-K online-softmax kernel over GQA row tiles, a split reduce.
#include "kernels/cuda/paged_attention.h"

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cub/block/block_scan.cuh>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"

namespace octet::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 128;          // attention kernel
constexpr int kKeys = 32;              // keys per shared-memory tile
constexpr int kMinChunk = 256;         // fewest keys per split
constexpr int64_t kTargetCtas = 1056;  // ~8 CTAs per SM of a 132-SM H100
constexpr int kLayoutThreads = 256;    // prologue
constexpr int kReduceWarps = 4;        // reduce kernel: one warp per (token, q head)
constexpr size_t kAlign = 256;

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
  int num_seqs, num_tokens, q_heads, kv_heads, head_dim, block_size, group;
  float scale;
  float* out;
  int32_t* item_start;  // [num_seqs + 1]: first work item of each sequence; [num_seqs] = total
  int chunk;            // keys per split
  int64_t bound_items;  // grid.x
  float* part_ml;       // [kv_heads, bound_items, rows, 2]: (max, sum) of a split's rows
  float* part_acc;      // [kv_heads, bound_items, rows, head_dim]
};

__host__ __device__ __forceinline__ int NumSplits(int ctx, int chunk) {
  return ctx > chunk ? (ctx + chunk - 1) / chunk : 1;
}

__device__ __forceinline__ int SeqItems(int n, int ctx, int group, int rows, int chunk) {
  return n > 0 ? (n * group + rows - 1) / rows * NumSplits(ctx, chunk) : 0;
}

// The largest b in [0, n) with starts[b] <= x (starts nondecreasing): the sequence holding item / token x.
__device__ __forceinline__ int FindLast(const int32_t* starts, int n, int x) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// 8 consecutive cache elements (16-byte aligned for fp32/bf16, 8 for fp8) as loaded: held in registers while the
// previous phase computes, then widened to fp32 into shared memory. All-zero bits widen to exact zeros.
template <typename T>
struct Raw8;
template <>
struct Raw8<float> {
  float4 a, b;
};
template <>
struct Raw8<uint16_t> {
  uint4 u;
};
template <>
struct Raw8<uint8_t> {
  uint2 u;
  float s;
};

__device__ __forceinline__ void Zero(Raw8<float>& r) { r.a = r.b = make_float4(0.0f, 0.0f, 0.0f, 0.0f); }
__device__ __forceinline__ void Zero(Raw8<uint16_t>& r) { r.u = make_uint4(0, 0, 0, 0); }
__device__ __forceinline__ void Zero(Raw8<uint8_t>& r) {
  r.u = make_uint2(0, 0);
  r.s = 0.0f;
}

__device__ __forceinline__ void Load(const float* p, const float* /*scale*/, Raw8<float>& r) {
  const float4* p4 = reinterpret_cast<const float4*>(p);
  r.a = __ldg(p4);
  r.b = __ldg(p4 + 1);
}
__device__ __forceinline__ void Load(const uint16_t* p, const float* /*scale*/, Raw8<uint16_t>& r) {
  r.u = __ldg(reinterpret_cast<const uint4*>(p));
}
__device__ __forceinline__ void Load(const uint8_t* p, const float* scale, Raw8<uint8_t>& r) {
  r.u = __ldg(reinterpret_cast<const uint2*>(p));
  r.s = __ldg(scale);
}

__device__ __forceinline__ void Widen(const Raw8<float>& r, float4& a, float4& b) {
  a = r.a;
  b = r.b;
}

__device__ __forceinline__ float Bf16Lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float Bf16Hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

__device__ __forceinline__ void Widen(const Raw8<uint16_t>& r, float4& a, float4& b) {
  a = make_float4(Bf16Lo(r.u.x), Bf16Hi(r.u.x), Bf16Lo(r.u.y), Bf16Hi(r.u.y));
  b = make_float4(Bf16Lo(r.u.z), Bf16Hi(r.u.z), Bf16Lo(r.u.w), Bf16Hi(r.u.w));
}

// Two E4M3 codes (low byte first) -> exact f16 -> fp32, times the scale: one fp32 product as the CPU's.
__device__ __forceinline__ float2 Fp8x2(uint32_t two, float s) {
  const __half2 h(__nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two & 0xffffu), __NV_E4M3));
  const float2 f = __half22float2(h);
  return make_float2(__fmul_rn(f.x, s), __fmul_rn(f.y, s));
}

__device__ __forceinline__ void Widen(const Raw8<uint8_t>& r, float4& a, float4& b) {
  const float2 f0 = Fp8x2(r.u.x, r.s), f1 = Fp8x2(r.u.x >> 16, r.s);
  const float2 f2 = Fp8x2(r.u.y, r.s), f3 = Fp8x2(r.u.y >> 16, r.s);
  a = make_float4(f0.x, f0.y, f1.x, f1.y);
  b = make_float4(f2.x, f2.y, f3.x, f3.y);
}

// A tile of kKeys keys (or values) x kD columns spread over the CTA: chunk i of thread t is 8 columns of one key.
template <typename T, int kD>
struct Tile {
  static constexpr int kPerKey = kD / 8;
  static constexpr int kChunks = kKeys * kPerKey / kThreads;
  static_assert(kKeys * kPerKey % kThreads == 0, "tile chunks");
  Raw8<T> c[kChunks];

  // Keys kb .. kb + nk - 1 of the sequence (kv head g); zeros past nk and past head_dim, so that masked keys and
  // padded columns add exact zeros.
  __device__ __forceinline__ void Load(const T* __restrict__ cache, const float* __restrict__ scales,
                                       const int32_t* __restrict__ table, int kb, int nk, int g, const Params& p) {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int idx = static_cast<int>(threadIdx.x) + kThreads * i;
      const int key = idx / kPerKey, d = (idx % kPerKey) * 8;
      Zero(c[i]);
      if (key < nk && d < p.head_dim) {
        const int pos = kb + key;
        const int64_t slot = static_cast<int64_t>(table[pos / p.block_size]) * p.block_size + pos % p.block_size;
        const int64_t row = slot * p.kv_heads + g;
        ::octet::cuda::Load(cache + row * p.head_dim + d, scales + row, c[i]);
      }
    }
  }

  // As fp32 rows of dst [kKeys][kD + 4].
  __device__ __forceinline__ void Store(float* dst) const {
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int idx = static_cast<int>(threadIdx.x) + kThreads * i;
      const int key = idx / kPerKey, d = (idx % kPerKey) * 8;
      float4 a, b;
      Widen(c[i], a, b);
      float4* out = reinterpret_cast<float4*>(dst + key * (kD + 4) + d);
      out[0] = a;
      out[1] = b;
    }
  }
};

constexpr int SmemFloats(int d, int rows) { return (rows + kKeys) * (d + 4) + rows * (kKeys + 4) + 3 * rows; }

// One work item (sequence b, tile of kRows rows, split of `chunk` keys) of kv head blockIdx.y.
template <typename T, int kD, int kRows>
__global__ void __launch_bounds__(kThreads, 2) PagedAttentionKernel(const Params p) {
  constexpr int kStride = kD + 4;
  constexpr int kPStride = kKeys + 4;
  constexpr int kRowSets = kRows / 8;  // score phase: thread owns rows rp + 8 i and keys kp, kp + 16
  constexpr int kNc = kD / 8;          // pv phase: thread owns columns 4 ct .. +3 and kD / 2 + 4 ct .. +3
  constexpr int kNr = kThreads / kNc;  //           and rows rt + kNr i
  constexpr int kRb = kRows / kNr;
  static_assert(kRows % 8 == 0 && kThreads == 128 && kKeys == 32, "score mapping");
  static_assert(kRb >= 1 && kRows % kNr == 0, "pv mapping");

  const int item = static_cast<int>(blockIdx.x);
  if (item >= p.item_start[p.num_seqs]) return;
  const int g = static_cast<int>(blockIdx.y);
  const int b = FindLast(p.item_start, p.num_seqs, item);
  const int q0 = p.query_start[b];
  const int n = p.query_start[b + 1] - q0;
  const int ctx = p.context_lens[b];
  const int splits = NumSplits(ctx, p.chunk);
  const int local = item - p.item_start[b];
  const int tile = local / splits, split = local - tile * splits;
  const int row0 = tile * kRows;
  const int rows_b = n * p.group;
  const int causal0 = ctx - n;  // row r of the sequence (query r / group) sees keys 0 .. causal0 + r / group
  const int last_row = min(row0 + kRows, rows_b) - 1;
  const int key_begin = split * p.chunk;
  const int key_end = min(min(key_begin + p.chunk, ctx), causal0 + last_row / p.group + 1);

  extern __shared__ float4 smem4[];
  float* sq = reinterpret_cast<float*>(smem4);  // [kRows][kStride]
  float* skv = sq + kRows * kStride;            // [kKeys][kStride]: K, then V, of the tile
  float* sp = skv + kKeys * kStride;            // [kRows][kPStride]: exp(s - m)
  float* scorr = sp + kRows * kPStride;         // [kRows]: this tile's rescale of acc
  float* sl = scorr + kRows;                    // [kRows]: final sum
  float* sm = sl + kRows;                       // [kRows]: final max

  const int tid = static_cast<int>(threadIdx.x);
  for (int i = tid; i < kRows * (kD / 4); i += kThreads) {
    const int r = i / (kD / 4), c = (i % (kD / 4)) * 4;
    const int row = row0 + r;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (row < rows_b && c < p.head_dim) {
      const int64_t token = q0 + row / p.group;
      const int64_t head = static_cast<int64_t>(g) * p.group + row % p.group;
      v = __ldg(reinterpret_cast<const float4*>(p.q + (token * p.q_heads + head) * p.head_dim + c));
    }
    *reinterpret_cast<float4*>(sq + r * kStride + c) = v;
  }

  const int kp = tid & 15, rp = tid >> 4;
  int last[kRowSets];
  float m[kRowSets], l[kRowSets];
#pragma unroll
  for (int i = 0; i < kRowSets; ++i) {
    const int row = row0 + rp + 8 * i;
    last[i] = row < rows_b ? causal0 + row / p.group : -1;
    m[i] = -INFINITY;
    l[i] = 0.0f;
  }
  const int ct = tid % kNc, rt = tid / kNc;
  float acc[kRb][8];
#pragma unroll
  for (int i = 0; i < kRb; ++i) {
#pragma unroll
    for (int c = 0; c < 8; ++c) acc[i][c] = 0.0f;
  }

  const int32_t* table = p.block_tables + static_cast<int64_t>(b) * p.max_blocks;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  // Software pipeline: the values of a tile load during its scores, the next tile's keys during its PV products.
  Tile<T, kD> raw;
  if (key_begin < key_end) raw.Load(kc, p.k_scale, table, key_begin, min(kKeys, key_end - key_begin), g, p);
  for (int kb = key_begin; kb < key_end; kb += kKeys) {
    const int nk = min(kKeys, key_end - kb);
    __syncthreads();  // the previous tile's readers of skv, sp, scorr are done
    raw.Store(skv);
    raw.Load(vc, p.v_scale, table, kb, nk, g, p);
    __syncthreads();

    float s[kRowSets][2];
#pragma unroll
    for (int i = 0; i < kRowSets; ++i) s[i][0] = s[i][1] = 0.0f;
#pragma unroll 8
    for (int d = 0; d < kD; d += 4) {
      const float4 k0 = *reinterpret_cast<const float4*>(skv + kp * kStride + d);
      const float4 k1 = *reinterpret_cast<const float4*>(skv + (kp + 16) * kStride + d);
#pragma unroll
      for (int i = 0; i < kRowSets; ++i) {
        const float4 qv = *reinterpret_cast<const float4*>(sq + (rp + 8 * i) * kStride + d);
        s[i][0] = fmaf(qv.x, k0.x, s[i][0]);
        s[i][0] = fmaf(qv.y, k0.y, s[i][0]);
        s[i][0] = fmaf(qv.z, k0.z, s[i][0]);
        s[i][0] = fmaf(qv.w, k0.w, s[i][0]);
        s[i][1] = fmaf(qv.x, k1.x, s[i][1]);
        s[i][1] = fmaf(qv.y, k1.y, s[i][1]);
        s[i][1] = fmaf(qv.z, k1.z, s[i][1]);
        s[i][1] = fmaf(qv.w, k1.w, s[i][1]);
      }
    }
#pragma unroll
    for (int i = 0; i < kRowSets; ++i) {
      float sc[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int key = kp + 16 * j;
        sc[j] = key < nk && kb + key <= last[i] ? s[i][j] * p.scale : -INFINITY;
      }
      float tmax = fmaxf(sc[0], sc[1]);
#pragma unroll
      for (int o = 8; o > 0; o /= 2) tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, o));
      const float m_new = fmaxf(m[i], tmax);
      const float corr = m_new == -INFINITY ? 1.0f : expf(m[i] - m_new);
      const float p0 = sc[0] == -INFINITY ? 0.0f : expf(sc[0] - m_new);
      const float p1 = sc[1] == -INFINITY ? 0.0f : expf(sc[1] - m_new);
      float sum = p0 + p1;
#pragma unroll
      for (int o = 8; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l[i] = l[i] * corr + sum;
      m[i] = m_new;
      const int r = rp + 8 * i;
      sp[r * kPStride + kp] = p0;
      sp[r * kPStride + kp + 16] = p1;
      if (kp == 0) scorr[r] = corr;
    }
    __syncthreads();  // scores done with K
    raw.Store(skv);
    if (kb + kKeys < key_end) raw.Load(kc, p.k_scale, table, kb + kKeys, min(kKeys, key_end - kb - kKeys), g, p);
    __syncthreads();

#pragma unroll
    for (int i = 0; i < kRb; ++i) {
      const float corr = scorr[rt + kNr * i];
#pragma unroll
      for (int c = 0; c < 8; ++c) acc[i][c] *= corr;
    }
#pragma unroll
    for (int k = 0; k < kKeys; k += 4) {
      float4 pr[kRb];
#pragma unroll
      for (int i = 0; i < kRb; ++i) pr[i] = *reinterpret_cast<const float4*>(sp + (rt + kNr * i) * kPStride + k);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const float4 v0 = *reinterpret_cast<const float4*>(skv + (k + kk) * kStride + 4 * ct);
        const float4 v1 = *reinterpret_cast<const float4*>(skv + (k + kk) * kStride + kD / 2 + 4 * ct);
#pragma unroll
        for (int i = 0; i < kRb; ++i) {
          const float w = kk == 0 ? pr[i].x : kk == 1 ? pr[i].y : kk == 2 ? pr[i].z : pr[i].w;
          acc[i][0] = fmaf(w, v0.x, acc[i][0]);
          acc[i][1] = fmaf(w, v0.y, acc[i][1]);
          acc[i][2] = fmaf(w, v0.z, acc[i][2]);
          acc[i][3] = fmaf(w, v0.w, acc[i][3]);
          acc[i][4] = fmaf(w, v1.x, acc[i][4]);
          acc[i][5] = fmaf(w, v1.y, acc[i][5]);
          acc[i][6] = fmaf(w, v1.z, acc[i][6]);
          acc[i][7] = fmaf(w, v1.w, acc[i][7]);
        }
      }
    }
  }

  if (kp == 0) {
#pragma unroll
    for (int i = 0; i < kRowSets; ++i) {
      sl[rp + 8 * i] = l[i];
      sm[rp + 8 * i] = m[i];
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kRb; ++i) {
    const int r = rt + kNr * i;
    const int row = row0 + r;
    if (row >= rows_b) continue;
    if (splits == 1) {
      const int64_t token = q0 + row / p.group;
      const int64_t head = static_cast<int64_t>(g) * p.group + row % p.group;
      float* o = p.out + (token * p.q_heads + head) * p.head_dim;
      const float denom = sl[r];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = 4 * ct + h * (kD / 2);
        if (col >= p.head_dim) continue;
        *reinterpret_cast<float4*>(o + col) =
            make_float4(__fdiv_rn(acc[i][4 * h], denom), __fdiv_rn(acc[i][4 * h + 1], denom),
                        __fdiv_rn(acc[i][4 * h + 2], denom), __fdiv_rn(acc[i][4 * h + 3], denom));
      }
    } else {
      const int64_t pi = (static_cast<int64_t>(g) * p.bound_items + item) * kRows + r;
      float* o = p.part_acc + pi * p.head_dim;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = 4 * ct + h * (kD / 2);
        if (col >= p.head_dim) continue;
        *reinterpret_cast<float4*>(o + col) =
            make_float4(acc[i][4 * h], acc[i][4 * h + 1], acc[i][4 * h + 2], acc[i][4 * h + 3]);
      }
      if (ct == 0) *reinterpret_cast<float2*>(p.part_ml + 2 * pi) = make_float2(sm[r], sl[r]);
    }
  }
}

// item_start[b] = sum of the work items of sequences before b; item_start[num_seqs] = total.
__global__ void __launch_bounds__(kLayoutThreads)
    LayoutKernel(const int32_t* __restrict__ query_start, const int32_t* __restrict__ context_lens, int num_seqs,
                 int group, int rows, int chunk, int32_t* __restrict__ item_start) {
  using Scan = cub::BlockScan<int, kLayoutThreads>;
  __shared__ typename Scan::TempStorage temp;
  const int per = (num_seqs + kLayoutThreads - 1) / kLayoutThreads;
  const int b0 = min(num_seqs, static_cast<int>(threadIdx.x) * per), b1 = min(num_seqs, b0 + per);
  int sum = 0;
  for (int b = b0; b < b1; ++b)
    sum += SeqItems(query_start[b + 1] - query_start[b], context_lens[b], group, rows, chunk);
  int prefix = 0;
  Scan(temp).ExclusiveSum(sum, prefix);
  for (int b = b0; b < b1; ++b) {
    item_start[b] = prefix;
    prefix += SeqItems(query_start[b + 1] - query_start[b], context_lens[b], group, rows, chunk);
  }
  if (threadIdx.x == kLayoutThreads - 1) item_start[num_seqs] = prefix;
}

// Merges the splits of each output row (token, q head) of the sequences with more than one split, splits in order.
__global__ void __launch_bounds__(kReduceWarps* kWarp) ReduceKernel(const Params p, int rows) {
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kReduceWarps + threadIdx.x / kWarp;
  if (w >= static_cast<int64_t>(p.num_tokens) * p.q_heads) return;  // uniform per warp
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int token = static_cast<int>(w / p.q_heads), h = static_cast<int>(w % p.q_heads);
  const int b = FindLast(p.query_start, p.num_seqs, token);
  const int splits = NumSplits(p.context_lens[b], p.chunk);
  if (splits == 1) return;  // written by the attention kernel
  const int g = h / p.group;
  const int row = (token - p.query_start[b]) * p.group + h % p.group;
  const int r = row % rows;
  const int64_t first = p.item_start[b] + static_cast<int64_t>(row / rows) * splits;
  if (first + splits > p.bound_items) return;  // inputs broke the host-side bounds
  const int64_t base = static_cast<int64_t>(g) * p.bound_items + first;
  float mmax = -INFINITY;
  for (int s = lane; s < splits; s += kWarp) mmax = fmaxf(mmax, p.part_ml[2 * ((base + s) * rows + r)]);
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) mmax = fmaxf(mmax, __shfl_xor_sync(0xffffffffu, mmax, o));
  float lsum = 0.0f;
  for (int s = lane; s < splits; s += kWarp) {
    const float2 ml = *reinterpret_cast<const float2*>(p.part_ml + 2 * ((base + s) * rows + r));
    if (ml.x != -INFINITY) lsum += ml.y * expf(ml.x - mmax);
  }
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) lsum += __shfl_xor_sync(0xffffffffu, lsum, o);
  float* out = p.out + (static_cast<int64_t>(token) * p.q_heads + h) * p.head_dim;
  for (int d = 4 * lane; d < p.head_dim; d += 4 * kWarp) {
    float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int s = 0; s < splits; ++s) {
      const int64_t pi = (base + s) * rows + r;
      const float ms = p.part_ml[2 * pi];
      if (ms == -INFINITY) continue;  // no key of this split is visible to the row
      const float f = expf(ms - mmax);
      const float4 v = *reinterpret_cast<const float4*>(p.part_acc + pi * p.head_dim + d);
      a.x = fmaf(f, v.x, a.x);
      a.y = fmaf(f, v.y, a.y);
      a.z = fmaf(f, v.z, a.z);
      a.w = fmaf(f, v.w, a.w);
    }
    *reinterpret_cast<float4*>(out + d) =
        make_float4(__fdiv_rn(a.x, lsum), __fdiv_rn(a.y, lsum), __fdiv_rn(a.z, lsum), __fdiv_rn(a.w, lsum));
  }
}

size_t AlignUp(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

struct Plan {
  bool valid = false;
  bool empty = false;
  int kd = 0, rows = 0, group = 0, chunk = 0, max_splits = 0;
  int64_t bound_items = 0;
  size_t layout_bytes = 0, ml_bytes = 0, acc_bytes = 0;
  size_t Total() const { return layout_bytes + ml_bytes + acc_bytes; }
};

Plan MakePlan(const PagedAttentionArgs& a) {
  Plan plan;
  constexpr int64_t kIntMax = 0x7fffffff;
  if (a.num_seqs < 0 || a.num_tokens < 0 || a.q_heads <= 0 || a.kv_heads <= 0 || a.q_heads % a.kv_heads != 0 ||
      a.head_dim < 8 || a.head_dim > 256 || a.head_dim % 8 != 0 || a.block_size <= 0 || a.max_blocks < 0 ||
      a.kv_heads > 65535 || a.num_tokens > kIntMax || a.num_tokens * a.q_heads > kIntMax) {
    return plan;
  }
  plan.valid = true;
  if (a.num_seqs == 0 || a.num_tokens == 0) {
    plan.empty = true;
    return plan;
  }
  if (a.max_query_len <= 0 || a.max_context_len < a.max_query_len) {
    plan.valid = false;
    return plan;
  }
  plan.group = static_cast<int>(a.q_heads / a.kv_heads);
  plan.kd = a.head_dim <= 64 ? 64 : a.head_dim <= 128 ? 128 : 256;
  plan.rows = plan.kd >= 128 && static_cast<int64_t>(a.max_query_len) * plan.group <= 8 ? 8 : 16;
  const int64_t tiles = (a.num_tokens * plan.group + plan.rows - 1) / plan.rows;
  const int64_t ctas = std::max<int64_t>(tiles, a.num_seqs) * a.kv_heads;  // about, without splits
  const int64_t max_ctx = a.max_context_len;
  const int64_t splits = std::clamp<int64_t>((kTargetCtas + ctas - 1) / ctas, 1,
                                             std::max<int64_t>(1, (max_ctx + kMinChunk - 1) / kMinChunk));
  const int64_t chunk = ((max_ctx + splits - 1) / splits + kKeys - 1) / kKeys * kKeys;
  plan.chunk = static_cast<int>(chunk);
  plan.max_splits = static_cast<int>((max_ctx + chunk - 1) / chunk);
  plan.bound_items = (tiles + a.num_seqs) * plan.max_splits;
  if (plan.bound_items > kIntMax) {
    plan.valid = false;
    return plan;
  }
  plan.layout_bytes = AlignUp(static_cast<size_t>(a.num_seqs + 1) * sizeof(int32_t));
  if (plan.max_splits > 1) {
    const size_t part_rows = static_cast<size_t>(plan.bound_items) * a.kv_heads * plan.rows;
    plan.ml_bytes = AlignUp(part_rows * 2 * sizeof(float));
    plan.acc_bytes = AlignUp(part_rows * a.head_dim * sizeof(float));
  }
  return plan;
}

template <typename T, int kD, int kRows>
cudaError_t LaunchAttention(const Params& p, const Plan& plan, cudaStream_t stream) {
  const size_t smem = SmemFloats(kD, kRows) * sizeof(float);
  auto kernel = PagedAttentionKernel<T, kD, kRows>;
  CUDA_RETURN_IF_ERROR(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>(plan.bound_items), static_cast<unsigned>(p.kv_heads));
  kernel<<<grid, kThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t DispatchAttention(const Params& p, const Plan& plan, cudaStream_t stream) {
  if (plan.kd == 64) return LaunchAttention<T, 64, 16>(p, plan, stream);
  if (plan.kd == 128) {
    return plan.rows == 8 ? LaunchAttention<T, 128, 8>(p, plan, stream) : LaunchAttention<T, 128, 16>(p, plan, stream);
  }
  return plan.rows == 8 ? LaunchAttention<T, 256, 8>(p, plan, stream) : LaunchAttention<T, 256, 16>(p, plan, stream);
}

}  // namespace

size_t PagedAttentionWorkspaceBytes(const PagedAttentionArgs& args) {
  const Plan plan = MakePlan(args);
  return plan.valid && !plan.empty ? plan.Total() : 0;
}

cudaError_t PagedAttention(const PagedAttentionArgs& args, cudaStream_t stream) {
  const Plan plan = MakePlan(args);
  if (!plan.valid) return cudaErrorInvalidValue;
  if (plan.empty) return cudaSuccess;
  if (args.workspace == nullptr || args.workspace_bytes < plan.Total()) return cudaErrorInvalidValue;
  if (args.cache_dtype == KvCacheDType::kFp8E4M3 && (args.k_scale == nullptr || args.v_scale == nullptr)) {
    return cudaErrorInvalidValue;
  }
  char* ws = static_cast<char*>(args.workspace);
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
  p.num_seqs = static_cast<int>(args.num_seqs);
  p.num_tokens = static_cast<int>(args.num_tokens);
  p.q_heads = static_cast<int>(args.q_heads);
  p.kv_heads = static_cast<int>(args.kv_heads);
  p.head_dim = static_cast<int>(args.head_dim);
  p.block_size = static_cast<int>(args.block_size);
  p.group = plan.group;
  p.scale = args.scale;
  p.out = args.out;
  p.item_start = reinterpret_cast<int32_t*>(ws);
  p.chunk = plan.chunk;
  p.bound_items = plan.bound_items;
  if (plan.max_splits > 1) {
    p.part_ml = reinterpret_cast<float*>(ws + plan.layout_bytes);
    p.part_acc = reinterpret_cast<float*>(ws + plan.layout_bytes + plan.ml_bytes);
  }

  LayoutKernel<<<1, kLayoutThreads, 0, stream>>>(args.query_start, args.context_lens, p.num_seqs, plan.group, plan.rows,
                                                 plan.chunk, p.item_start);
  CUDA_RETURN_IF_ERROR(cudaGetLastError());
  switch (args.cache_dtype) {
    case KvCacheDType::kF32:
      CUDA_RETURN_IF_ERROR(DispatchAttention<float>(p, plan, stream));
      break;
    case KvCacheDType::kBF16:
      CUDA_RETURN_IF_ERROR(DispatchAttention<uint16_t>(p, plan, stream));
      break;
    case KvCacheDType::kFp8E4M3:
      CUDA_RETURN_IF_ERROR(DispatchAttention<uint8_t>(p, plan, stream));
      break;
    default:
      return cudaErrorInvalidValue;
  }
  if (plan.max_splits > 1) {
    const int64_t warps = args.num_tokens * args.q_heads;
    const int64_t blocks = (warps + kReduceWarps - 1) / kReduceWarps;
    ReduceKernel<<<static_cast<unsigned>(blocks), kReduceWarps * kWarp, 0, stream>>>(p, plan.rows);
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
  }
  return cudaSuccess;
}

}  // namespace octet::cuda
