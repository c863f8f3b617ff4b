// Dense (non-FP8) linear layers: a warp-per-row GEMV for decode and a 64x64 tiled SIMT GEMM for prefill.
#include "kernels/cuda/linear_dense.h"

namespace octet::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kGemvThreads = 256;
constexpr int kTile = 64;          // tokens x out features per block
constexpr int kTileK = 16;         // k per shared-memory stage
constexpr int kGemmThreads = 256;  // 16 x 16 threads, 4 x 4 outputs each

__device__ __forceinline__ float Widen(float v) { return v; }
__device__ __forceinline__ float Widen(__nv_bfloat16 v) { return __bfloat162float(v); }

// One warp per output row: lanes stride over k, each keeps one partial sum per token, then a butterfly. The slow
// path, for rows that are not whole 16-byte vectors.
template <typename W>
__global__ void __launch_bounds__(kGemvThreads)
    DenseGemvKernel(const float* __restrict__ x, const W* __restrict__ w, float* __restrict__ y, int tokens, int64_t in,
                    int64_t out_features) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kGemvThreads / kWarp) + threadIdx.x / kWarp;
  if (row >= out_features) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const W* wr = w + row * in;
  float acc[kDenseGemvMaxTokens];
#pragma unroll
  for (int t = 0; t < kDenseGemvMaxTokens; ++t) acc[t] = 0.0f;
  for (int64_t k = lane; k < in; k += kWarp) {
    const float wv = Widen(wr[k]);
#pragma unroll
    for (int t = 0; t < kDenseGemvMaxTokens; ++t) {
      if (t < tokens) acc[t] = fmaf(x[t * in + k], wv, acc[t]);
    }
  }
#pragma unroll
  for (int t = 0; t < kDenseGemvMaxTokens; ++t) {
    if (t >= tokens) break;
    float s = acc[t];
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) y[t * out_features + row] = s;
  }
}

// Widens the 16 bytes of one weight vector: 8 bf16 or 4 fp32.
__device__ __forceinline__ void Unpack(const uint4& raw, float (&out)[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void Unpack(const uint4& raw, float (&out)[4]) {
  out[0] = __uint_as_float(raw.x);
  out[1] = __uint_as_float(raw.y);
  out[2] = __uint_as_float(raw.z);
  out[3] = __uint_as_float(raw.w);
}

// The fast path (rows of whole 16-byte vectors, 16-byte aligned): one warp per output row streams the row in 16-byte
// loads that bypass L1 (each weight is read once), the activations come through L1 (every warp reads them), and
// kTokens partial sums per lane meet in a butterfly. Two vectors per lane per iteration keep loads in flight.
template <typename W, int kTokens>
__global__ void __launch_bounds__(kGemvThreads)
    DenseGemvVecKernel(const float* __restrict__ x, const W* __restrict__ w, float* __restrict__ y, int64_t in,
                       int64_t out_features) {
  constexpr int kVec = 16 / sizeof(W);
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (kGemvThreads / kWarp) + threadIdx.x / kWarp;
  if (row >= out_features) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const uint4* wr = reinterpret_cast<const uint4*>(w + row * in);
  const int64_t vectors = in / kVec;
  float acc[kTokens];
#pragma unroll
  for (int t = 0; t < kTokens; ++t) acc[t] = 0.0f;
  auto consume = [&](const uint4& raw, int64_t v) {
    float wf[kVec];
    Unpack(raw, wf);
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      const float4* xv = reinterpret_cast<const float4*>(x + t * in + v * kVec);
#pragma unroll
      for (int q = 0; q < kVec / 4; ++q) {
        const float4 xx = __ldg(xv + q);
        acc[t] = fmaf(xx.x, wf[4 * q], acc[t]);
        acc[t] = fmaf(xx.y, wf[4 * q + 1], acc[t]);
        acc[t] = fmaf(xx.z, wf[4 * q + 2], acc[t]);
        acc[t] = fmaf(xx.w, wf[4 * q + 3], acc[t]);
      }
    }
  };
  int64_t v = lane;
  for (; v + kWarp < vectors; v += 2 * kWarp) {
    const uint4 a = __ldcs(wr + v);
    const uint4 b = __ldcs(wr + v + kWarp);
    consume(a, v);
    consume(b, v + kWarp);
  }
  if (v < vectors) consume(__ldcs(wr + v), v);
#pragma unroll
  for (int t = 0; t < kTokens; ++t) {
    float s = acc[t];
    for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) y[t * out_features + row] = s;
  }
}

template <typename W, int kTokens>
void LaunchVec(const float* x, const W* w, float* y, int64_t in, int64_t out_features, cudaStream_t stream) {
  const int64_t blocks = (out_features + kGemvThreads / kWarp - 1) / (kGemvThreads / kWarp);
  DenseGemvVecKernel<W, kTokens><<<static_cast<unsigned>(blocks), kGemvThreads, 0, stream>>>(x, w, y, in, out_features);
}

template <typename W>
void LaunchVecForTokens(const float* x, const W* w, float* y, int64_t tokens, int64_t in, int64_t out_features,
                        cudaStream_t stream) {
  switch (tokens) {
    case 1:
      return LaunchVec<W, 1>(x, w, y, in, out_features, stream);
    case 2:
      return LaunchVec<W, 2>(x, w, y, in, out_features, stream);
    case 3:
      return LaunchVec<W, 3>(x, w, y, in, out_features, stream);
    case 4:
      return LaunchVec<W, 4>(x, w, y, in, out_features, stream);
    case 5:
      return LaunchVec<W, 5>(x, w, y, in, out_features, stream);
    case 6:
      return LaunchVec<W, 6>(x, w, y, in, out_features, stream);
    case 7:
      return LaunchVec<W, 7>(x, w, y, in, out_features, stream);
    default:
      return LaunchVec<W, 8>(x, w, y, in, out_features, stream);
  }
}

// Classic shared-memory tiled GEMM: block (token tile, out tile); thread (ty, tx) owns rows ty + 16 i, cols tx + 16 j.
template <typename W>
__global__ void __launch_bounds__(kGemmThreads)
    DenseGemmKernel(const float* __restrict__ x, const W* __restrict__ w, float* __restrict__ y, int64_t tokens,
                    int64_t in, int64_t out_features) {
  __shared__ float xs[kTileK][kTile + 1];
  __shared__ float ws[kTileK][kTile + 1];
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int tid = static_cast<int>(threadIdx.x);
  const int ty = tid / 16, tx = tid % 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < in; k0 += kTileK) {
    for (int e = tid; e < kTile * kTileK; e += kGemmThreads) {
      const int r = e / kTileK, kk = e % kTileK;
      const int64_t k = k0 + kk;
      const int64_t t = t0 + r, n = n0 + r;
      xs[kk][r] = (t < tokens && k < in) ? x[t * in + k] : 0.0f;
      ws[kk][r] = (n < out_features && k < in) ? Widen(w[n * in + k]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t t = t0 + ty + 16 * i;
    if (t >= tokens) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx + 16 * j;
      if (n < out_features) y[t * out_features + n] = acc[i][j];
    }
  }
}

}  // namespace

template <typename W>
cudaError_t LinearDense(const float* x, const W* w, float* y, int64_t tokens, int64_t in, int64_t out_features,
                        cudaStream_t stream) {
  if (tokens < 0 || in < 0 || out_features < 0) return cudaErrorInvalidValue;
  if (tokens == 0 || out_features == 0) return cudaSuccess;
  if (tokens <= kDenseGemvMaxTokens) {
    constexpr int64_t kVec = 16 / sizeof(W);
    const bool vectors =
        in % kVec == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
    if (vectors) {
      LaunchVecForTokens(x, w, y, tokens, in, out_features, stream);
      return cudaGetLastError();
    }
    const int64_t blocks = (out_features + kGemvThreads / kWarp - 1) / (kGemvThreads / kWarp);
    DenseGemvKernel<W><<<static_cast<unsigned>(blocks), kGemvThreads, 0, stream>>>(x, w, y, static_cast<int>(tokens),
                                                                                   in, out_features);
    return cudaGetLastError();
  }
  const int64_t grid_y = (tokens + kTile - 1) / kTile;
  if (grid_y > 65535) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>((out_features + kTile - 1) / kTile), static_cast<unsigned>(grid_y));
  DenseGemmKernel<W><<<grid, kGemmThreads, 0, stream>>>(x, w, y, tokens, in, out_features);
  return cudaGetLastError();
}

template cudaError_t LinearDense<float>(const float*, const float*, float*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t LinearDense<__nv_bfloat16>(const float*, const __nv_bfloat16*, float*, int64_t, int64_t, int64_t,
                                                cudaStream_t);

}  // namespace octet::cuda
