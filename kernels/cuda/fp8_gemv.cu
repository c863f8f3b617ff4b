// The skinny FP8 GEMM (GEMV) for decode: warps stream 16-byte slices of weight rows into tensor-core MMAs or FP32
// FMAs of the exact products (Fp8GemvPath; the launcher picks per shape).
//
// FMA path layout. A warp owns R consecutive rows (a row tile, inside one 128-row scale block) and walks K in chunks of
// 512 columns: lane l takes columns [512 j + 16 l, +16), one 16-byte load per row and per token, all inside the
// 128-group 4 j + l / 8. `split` warps of a block share a tile and take every split-th chunk; the block's 8 warps cover
// 8 / split tiles. Weights are read once (ld.global.nc, no L1 allocation: they are streamed); activations and scales
// are small and shared by every warp, so they stay in L1/L2.
#include "kernels/cuda/fp8_gemv.h"

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.h"

namespace octet::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;
constexpr int kLaneCols = 16;              // one 16-byte vector of E4M3 codes
constexpr int kChunk = kWarp * kLaneCols;  // 512 columns per warp step
constexpr int kGroup = 128;                // activation group / weight block edge

// Rows per warp: more rows reuse each decoded activation; fewer keep registers (and the grid) for small M.
constexpr int RowsPerWarp(int m) { return m == 1 ? 1 : (m <= 4 ? 2 : 4); }
// Chunks loaded before any is used (bytes in flight per warp), as registers allow.
constexpr int LoadDepth(int m) { return m == 1 ? 4 : (m <= 4 ? 2 : 1); }
// Blocks per SM the register budget is cut for: 4 (64 registers) at M = 1, 2 (128) up to M = 5; M = 6..8 need up to
// ~160 registers for their 4 x M partial sums and accumulators and would spill at 128.
constexpr int MinBlocksPerSm(int m) { return m == 1 ? 4 : (m <= 5 ? 2 : 1); }

struct GemvParams {
  const uint8_t* xq;
  const float* xs;
  const uint8_t* wq;
  const float* ws;
  void* y;
  int64_t in;
  int64_t out_features;
  int64_t groups;  // ceil(in / 128)
  int64_t chunks;  // ceil(in / 512)
  int split;
};

// Weights: read-only for the kernel's life and read once, so the non-coherent path without L1 allocation.
__device__ __forceinline__ uint4 LoadStream(const uint8_t* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// Unaligned or ragged rows: byte loads, zero past the end (a zero code contributes an exact 0 to every sum).
__device__ __forceinline__ uint4 LoadBytes(const uint8_t* p, int64_t valid) {
  uint32_t w[4] = {0, 0, 0, 0};
#pragma unroll
  for (int i = 0; i < kLaneCols; ++i) {
    if (i < valid) w[i / 4] |= static_cast<uint32_t>(p[i]) << (8 * (i % 4));
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

template <bool kVec>
__device__ __forceinline__ uint4 LoadWeights(const uint8_t* p, int64_t valid) {
  if constexpr (kVec) {
    return LoadStream(p);  // valid >= 16: in % 16 == 0 and the chunk starts before `in`
  } else {
    return LoadBytes(p, valid);
  }
}

template <bool kVec>
__device__ __forceinline__ uint4 LoadActivations(const uint8_t* p, int64_t valid) {
  if constexpr (kVec) {
    return __ldg(reinterpret_cast<const uint4*>(p));
  } else {
    return LoadBytes(p, valid);
  }
}

// Two E4M3 codes (low byte first) to their exact fp32 values: cvt.rn.f16x2.e4m3x2 (exact: every E4M3 value is an
// f16), then f16 -> f32.
__device__ __forceinline__ float2 DecodeE4M3x2(uint32_t two_codes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two_codes), __NV_E4M3);
  return __half22float2(__half2(h));
}

// The e-th pair (e = 0..7) of codes of a 16-byte vector.
template <int E>
__device__ __forceinline__ uint32_t Pair(const uint4& v) {
  const uint32_t word = E / 2 == 0 ? v.x : (E / 2 == 1 ? v.y : (E / 2 == 2 ? v.z : v.w));
  return E % 2 == 0 ? (word & 0xffffu) : (word >> 16);
}

// part[t][r] = sum over the 16 columns of x[t] * w[r], products exact, FMAs in column order.
template <int M, int R, int E>
__device__ __forceinline__ void DotPair(const uint4 (&xv)[M], const uint4 (&wv)[R], float (&part)[M][R]) {
  float2 xf[M];
#pragma unroll
  for (int t = 0; t < M; ++t) xf[t] = DecodeE4M3x2(Pair<E>(xv[t]));
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float2 wf = DecodeE4M3x2(Pair<E>(wv[r]));
#pragma unroll
    for (int t = 0; t < M; ++t) {
      part[t][r] = E == 0 ? __fmul_rn(xf[t].x, wf.x) : fmaf(xf[t].x, wf.x, part[t][r]);
      part[t][r] = fmaf(xf[t].y, wf.y, part[t][r]);
    }
  }
}

template <typename OutT>
__device__ __forceinline__ OutT FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <int M, int R, int D, int kMinBlocks, bool kVec, typename OutT>
__global__ void __launch_bounds__(kThreads, kMinBlocks) Fp8GemvKernel(const GemvParams p) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp, warp = static_cast<int>(threadIdx.x) / kWarp;
  const int split = p.split;
  const int slot = warp / split, kw = warp % split;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * (kWarps / split) + slot) * R;
  const int64_t in = p.in, groups = p.groups;

  float acc[M][R];
#pragma unroll
  for (int t = 0; t < M; ++t) {
#pragma unroll
    for (int r = 0; r < R; ++r) acc[t][r] = 0.0f;
  }

  if (row0 < p.out_features) {  // warp-uniform; no early return: the split reduction below has a barrier
    const int64_t rows_left = p.out_features - row0;
    const float* ws_row = p.ws + (row0 / kGroup) * groups;  // R divides 128: the tile is in one scale block
    const uint8_t* w_base = p.wq + row0 * in;
    for (int64_t j0 = kw; j0 < p.chunks; j0 += static_cast<int64_t>(split) * D) {
      uint4 wv[D][R];
      uint4 xv[D][M];
      float w_scale[D], x_scale[D][M];
#pragma unroll
      for (int d = 0; d < D; ++d) {  // all loads first: D * (R + M) 16-byte loads in flight per lane
        const int64_t c = (j0 + static_cast<int64_t>(d) * split) * kChunk + lane * kLaneCols;
        const int64_t valid = in - c;
        const int64_t g = c / kGroup;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          wv[d][r] =
              (valid > 0 && r < rows_left) ? LoadWeights<kVec>(w_base + r * in + c, valid) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int t = 0; t < M; ++t) {
          xv[d][t] = valid > 0 ? LoadActivations<kVec>(p.xq + t * in + c, valid) : make_uint4(0, 0, 0, 0);
          x_scale[d][t] = valid > 0 ? __ldg(p.xs + t * groups + g) : 0.0f;
        }
        w_scale[d] = valid > 0 ? __ldg(ws_row + g) : 0.0f;
      }
#pragma unroll
      for (int d = 0; d < D; ++d) {
        const int64_t c = (j0 + static_cast<int64_t>(d) * split) * kChunk + lane * kLaneCols;
        if (c >= in) continue;  // past the end of K (also covers chunks past p.chunks)
        float part[M][R];
        DotPair<M, R, 0>(xv[d], wv[d], part);
        DotPair<M, R, 1>(xv[d], wv[d], part);
        DotPair<M, R, 2>(xv[d], wv[d], part);
        DotPair<M, R, 3>(xv[d], wv[d], part);
        DotPair<M, R, 4>(xv[d], wv[d], part);
        DotPair<M, R, 5>(xv[d], wv[d], part);
        DotPair<M, R, 6>(xv[d], wv[d], part);
        DotPair<M, R, 7>(xv[d], wv[d], part);
#pragma unroll
        for (int t = 0; t < M; ++t) {
          const float combined = __fmul_rn(x_scale[d][t], w_scale[d]);  // LinearFp8's xs * ws
#pragma unroll
          for (int r = 0; r < R; ++r) acc[t][r] = fmaf(part[t][r], combined, acc[t][r]);
        }
      }
    }
  }

  // Lanes: a fixed butterfly (every lane ends with the warp's sum).
#pragma unroll
  for (int t = 0; t < M; ++t) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int offset = kWarp / 2; offset > 0; offset /= 2) {
        acc[t][r] = __fadd_rn(acc[t][r], __shfl_xor_sync(0xffffffffu, acc[t][r], offset));
      }
    }
  }
  // Lane t * R + r holds output (t, r).
  float mine = 0.0f;
#pragma unroll
  for (int t = 0; t < M; ++t) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (lane == t * R + r) mine = acc[t][r];
    }
  }
  if (split > 1) {  // block-uniform
    __shared__ float partial[kWarps][M * R];
    if (lane < M * R) partial[warp][lane] = mine;
    __syncthreads();
    if (kw != 0) return;
    for (int w = 1; w < split; ++w) mine = __fadd_rn(mine, partial[warp + w][lane < M * R ? lane : 0]);
  }
  if (lane < M * R) {
    const int t = lane / R, r = lane % R;
    if (row0 + r < p.out_features) static_cast<OutT*>(p.y)[t * p.out_features + row0 + r] = FromFloat<OutT>(mine);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The tensor-core path. A warp owns a 16-row tile and walks K one 128-group at a time: per group, 8 chained
// mma.sync.m16n8k16 (f16 in, f32 accumulate) with the rows as M, the (up to 8) tokens as N, and a fresh accumulator,
// give P(t, o, g); then acc += P * fl(xs * ws) (LinearFp8's term and add, in ascending groups per warp). E4M3 values
// are exact in f16 and their products exact inside the MMA, so only the MMA's own fp32 accumulation differs from
// LinearFp8's exact group sum. Decoding is one cvt per two codes; no per-element FP32 work.
//
// Fragments (PTX m16n8k16, g = lane / 4, t = lane % 4): A regs {row g | row g + 8} x {k 2t, 2t+1 | k 2t+8, 2t+9},
// B regs {k 2t, 2t+1 | k 2t+8, 2t+9} x token g, C (row g | g + 8) x (token 2t, 2t + 1). The sum over k does not care
// which physical column a k is, as long as A and B agree: thread t loads 32 contiguous bytes [32 t, 32 t + 32) of
// the group for rows g and g + 8 and for token g, and in MMA s (0..7) its bytes 4s, 4s+1 are k 2t, 2t+1 and bytes
// 4s+2, 4s+3 are k 2t+8, 2t+9. Rows of a warp's 32 loads: 4 threads x 32 bytes = the 128-byte group, coalesced.

constexpr int kTileRows = 16;

__device__ __forceinline__ uint32_t E4M3x2ToHalf2(uint32_t two_codes) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two_codes), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}

__device__ __forceinline__ void MmaF16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                       uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t Word(const uint4 (&v)[2], int s) {
  const uint4& u = v[s / 4];
  const int w = s % 4;
  return w == 0 ? u.x : (w == 1 ? u.y : (w == 2 ? u.z : u.w));
}

// 32 bytes at p (16-byte pieces past `valid` bytes are zero).
template <bool kVec, bool kStream>
__device__ __forceinline__ void Load32(const uint8_t* p, int64_t valid, bool enabled, uint4 (&v)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t piece_valid = valid - kLaneCols * h;
    if (enabled && piece_valid > 0) {
      v[h] = kStream ? LoadWeights<kVec>(p + kLaneCols * h, piece_valid)
                     : LoadActivations<kVec>(p + kLaneCols * h, piece_valid);
    } else {
      v[h] = make_uint4(0, 0, 0, 0);
    }
  }
}

constexpr int kMmaDepth = 2;  // groups loaded before any is used (4 measured slower on an H200)

template <bool kVec, typename OutT>
__global__ void __launch_bounds__(kThreads) Fp8GemvMmaKernel(const GemvParams p, int tokens) {
  const int lane = static_cast<int>(threadIdx.x) % kWarp, warp = static_cast<int>(threadIdx.x) / kWarp;
  const int g = lane / 4, t = lane % 4;
  const int split = p.split;
  const int slot = warp / split, kw = warp % split;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * (kWarps / split) + slot) * kTileRows;
  const int64_t in = p.in, groups = p.groups, n = p.out_features;
  const int64_t row_a = row0 + g, row_b = row0 + g + 8;  // this thread's two rows
  const int tok0 = 2 * t, tok1 = 2 * t + 1;              // this thread's two output tokens
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};               // (row_a, tok0), (row_a, tok1), (row_b, tok0), (row_b, tok1)

  if (row0 < n) {                                           // warp-uniform
    const float* ws_row = p.ws + (row0 / kGroup) * groups;  // 16 | 128: the tile is in one scale block
    for (int64_t q0 = kw; q0 < groups; q0 += static_cast<int64_t>(split) * kMmaDepth) {
      uint4 wa[kMmaDepth][2], wb[kMmaDepth][2], xv[kMmaDepth][2];
      float w_scale[kMmaDepth], x_scale0[kMmaDepth], x_scale1[kMmaDepth];
#pragma unroll
      for (int d = 0; d < kMmaDepth; ++d) {
        const int64_t q = q0 + static_cast<int64_t>(d) * split;
        const bool live = q < groups;
        const int64_t c = q * kGroup + 32 * t;
        const int64_t valid = in - c;
        Load32<kVec, true>(p.wq + row_a * in + c, valid, live && row_a < n, wa[d]);
        Load32<kVec, true>(p.wq + row_b * in + c, valid, live && row_b < n, wb[d]);
        Load32<kVec, false>(p.xq + g * in + c, valid, live && g < tokens, xv[d]);
        w_scale[d] = live ? __ldg(ws_row + q) : 0.0f;
        x_scale0[d] = live && tok0 < tokens ? __ldg(p.xs + tok0 * groups + q) : 0.0f;
        x_scale1[d] = live && tok1 < tokens ? __ldg(p.xs + tok1 * groups + q) : 0.0f;
      }
#pragma unroll
      for (int d = 0; d < kMmaDepth; ++d) {
        if (q0 + static_cast<int64_t>(d) * split >= groups) continue;  // warp-uniform
        float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int s = 0; s < 8; ++s) {
          const uint32_t a = Word(wa[d], s), b = Word(wb[d], s), x = Word(xv[d], s);
          MmaF16(c, E4M3x2ToHalf2(a & 0xffffu), E4M3x2ToHalf2(b & 0xffffu), E4M3x2ToHalf2(a >> 16),
                 E4M3x2ToHalf2(b >> 16), E4M3x2ToHalf2(x & 0xffffu), E4M3x2ToHalf2(x >> 16));
        }
        const float combined0 = __fmul_rn(x_scale0[d], w_scale[d]);  // LinearFp8's xs * ws
        const float combined1 = __fmul_rn(x_scale1[d], w_scale[d]);
        acc[0] = __fadd_rn(acc[0], __fmul_rn(c[0], combined0));
        acc[1] = __fadd_rn(acc[1], __fmul_rn(c[1], combined1));
        acc[2] = __fadd_rn(acc[2], __fmul_rn(c[2], combined0));
        acc[3] = __fadd_rn(acc[3], __fmul_rn(c[3], combined1));
      }
    }
  }

  if (split > 1) {  // block-uniform: the warps of a tile add their accumulators in order
    __shared__ float partial[kWarps][4][kWarp];
#pragma unroll
    for (int i = 0; i < 4; ++i) partial[warp][i][lane] = acc[i];
    __syncthreads();
    if (kw != 0) return;
    for (int w = 1; w < split; ++w) {
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[i] = __fadd_rn(acc[i], partial[warp + w][i][lane]);
    }
  }
  OutT* y = static_cast<OutT*>(p.y);
  if (row_a < n && tok0 < tokens) y[tok0 * n + row_a] = FromFloat<OutT>(acc[0]);
  if (row_a < n && tok1 < tokens) y[tok1 * n + row_a] = FromFloat<OutT>(acc[1]);
  if (row_b < n && tok0 < tokens) y[tok0 * n + row_b] = FromFloat<OutT>(acc[2]);
  if (row_b < n && tok1 < tokens) y[tok1 * n + row_b] = FromFloat<OutT>(acc[3]);
}

// Warps per row tile (split): 1 unless there are too few tiles to put ~24 warps on every SM, then K is split until
// there are (measured on an H200, bench/results/fp8_gemv_h200.json: with enough tiles, split 1 streams best; with
// few, each doubling of the split up to that point helped).
int ChooseSplit(int64_t tiles, int64_t chunks, int sms) {
  int split = 1;
  while (split < kWarps && 2 * split <= chunks && tiles * split < 24LL * sms) split *= 2;
  return split;
}

int SplitOrDefault(const Fp8GemvOptions& options, int64_t tiles, int64_t chunks) {
  if (options.split != 0) return options.split;
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError();
    sms = 132;
  }
  return ChooseSplit(tiles, chunks, sms);
}

template <int M, int R, int D, int kMinBlocks, bool kVec, typename OutT>
cudaError_t LaunchShape(GemvParams p, cudaStream_t stream, const Fp8GemvOptions& options) {
  const int64_t tiles = (p.out_features + R - 1) / R;
  p.split = SplitOrDefault(options, tiles, p.chunks);
  const int64_t tiles_per_block = kWarps / p.split;
  const int64_t blocks = (tiles + tiles_per_block - 1) / tiles_per_block;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  Fp8GemvKernel<M, R, D, kMinBlocks, kVec, OutT><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

// The tile shape at one token when Fp8GemvOptions::variant is 0, from the shape (measured on an H200,
// bench/results/fp8_gemv_h200.json: more rows a warp share each decoded activation and put more weight bytes in
// flight; 4 rows won on the widest matrices, 2 rows 4 deep on the deepest, 2 rows 2 deep in between).
int OneTokenVariant(int64_t out_features, int64_t in) {
  if (out_features >= 24576) return 2;
  if (in >= 12288) return 1;
  if (out_features >= 8192) return 3;
  return 2;
}

template <int M, bool kVec, typename OutT>
cudaError_t Launch(GemvParams p, cudaStream_t stream, const Fp8GemvOptions& options) {
  if constexpr (M == 1 && kVec) {  // the tile shapes measured at one token (Fp8GemvOptions::variant)
    switch (options.variant != 0 ? options.variant : OneTokenVariant(p.out_features, p.in)) {
      case 1:
        return LaunchShape<1, 2, 4, 3, kVec, OutT>(p, stream, options);
      case 2:
        return LaunchShape<1, 4, 2, 3, kVec, OutT>(p, stream, options);
      case 3:
        return LaunchShape<1, 2, 2, 4, kVec, OutT>(p, stream, options);
      default:  // 4: one row a warp, 4 deep (4 rows x 4 and 8 rows x 2 were measured too, and were slower)
        break;
    }
  }
  constexpr int D = kVec ? LoadDepth(M) : 1;  // the byte path is for odd shapes, not speed
  return LaunchShape<M, RowsPerWarp(M), D, MinBlocksPerSm(M), kVec, OutT>(p, stream, options);
}

template <bool kVec, typename OutT>
cudaError_t LaunchTokens(const GemvParams& p, int64_t tokens, cudaStream_t stream, const Fp8GemvOptions& options) {
  switch (tokens) {
    case 1:
      return Launch<1, kVec, OutT>(p, stream, options);
    case 2:
      return Launch<2, kVec, OutT>(p, stream, options);
    case 3:
      return Launch<3, kVec, OutT>(p, stream, options);
    case 4:
      return Launch<4, kVec, OutT>(p, stream, options);
    case 5:
      return Launch<5, kVec, OutT>(p, stream, options);
    case 6:
      return Launch<6, kVec, OutT>(p, stream, options);
    case 7:
      return Launch<7, kVec, OutT>(p, stream, options);
    case 8:
      return Launch<8, kVec, OutT>(p, stream, options);
    default:
      return cudaErrorInvalidValue;
  }
}

template <bool kVec, typename OutT>
cudaError_t LaunchMma(GemvParams p, int64_t tokens, cudaStream_t stream, const Fp8GemvOptions& options) {
  const int64_t tiles = (p.out_features + kTileRows - 1) / kTileRows;
  p.split = SplitOrDefault(options, tiles, p.groups);
  const int64_t tiles_per_block = kWarps / p.split;
  const int64_t blocks = (tiles + tiles_per_block - 1) / tiles_per_block;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  Fp8GemvMmaKernel<kVec, OutT><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, static_cast<int>(tokens));
  return cudaGetLastError();
}

}  // namespace

template <typename OutT>
cudaError_t Fp8Gemv(const uint8_t* xq, const float* xs, const uint8_t* wq, const float* ws, OutT* y, int64_t tokens,
                    int64_t in, int64_t out_features, cudaStream_t stream, const Fp8GemvOptions& options) {
  if (tokens < 1 || tokens > kFp8GemvMaxTokens || in < 0 || out_features < 0) return cudaErrorInvalidValue;
  if (options.split != 0 && options.split != 1 && options.split != 2 && options.split != 4 && options.split != 8) {
    return cudaErrorInvalidValue;
  }
  if (options.variant < 0 || options.variant > 4) return cudaErrorInvalidValue;
  if (out_features == 0) return cudaSuccess;
  GemvParams p{xq, xs, wq, ws, y, in, out_features, (in + kGroup - 1) / kGroup, (in + kChunk - 1) / kChunk, 1};
  const bool aligned =
      in % kLaneCols == 0 && reinterpret_cast<uintptr_t>(xq) % 16 == 0 && reinterpret_cast<uintptr_t>(wq) % 16 == 0;
  // Measured on an H200 (bench/results/fp8_gemv_h200.json): at M = 1 the FMA path with 2-4 rows a warp streamed
  // every Qwen3.5-27B shape at 0.61-0.88 of copy bandwidth against the tensor-core path's 0.45-0.69; at M >= 2 the
  // tensor-core path was as fast or faster (flat in M).
  const Fp8GemvPath path =
      options.path != Fp8GemvPath::kAuto ? options.path : (tokens == 1 ? Fp8GemvPath::kFma : Fp8GemvPath::kTensorCore);
  if (path == Fp8GemvPath::kFma) {
    return aligned ? LaunchTokens<true, OutT>(p, tokens, stream, options)
                   : LaunchTokens<false, OutT>(p, tokens, stream, options);
  }
  return aligned ? LaunchMma<true, OutT>(p, tokens, stream, options)
                 : LaunchMma<false, OutT>(p, tokens, stream, options);
}

template cudaError_t Fp8Gemv<float>(const uint8_t*, const float*, const uint8_t*, const float*, float*, int64_t,
                                    int64_t, int64_t, cudaStream_t, const Fp8GemvOptions&);
template cudaError_t Fp8Gemv<__nv_bfloat16>(const uint8_t*, const float*, const uint8_t*, const float*, __nv_bfloat16*,
                                            int64_t, int64_t, int64_t, cudaStream_t, const Fp8GemvOptions&);

}  // namespace octet::cuda
