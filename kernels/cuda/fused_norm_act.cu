// Residual add + RMSNorm and SiLU*up, each with the FP8 quantization of its output (see fused_norm_act.h).
#include "kernels/cuda/fused_norm_act.h"

#include "kernels/cuda/fp8_device.cuh"

namespace octet::cuda {
namespace {

using internal::kGroup;
using internal::kGroupPerLane;
using internal::kWarp;

constexpr int kThreads = 256;  // SiLU*up: 8 groups a block
constexpr int kWarps = kThreads / kWarp;
constexpr int kNormThreads = 1024;  // add + norm: one block per row, so a decode row gets a whole block's loads
constexpr int kNormWarps = kNormThreads / kWarp;

// After the block wrote row `out` (and synced): each warp quantizes 128-groups of it, as fp8_quant.cu does.
template <int kBlockWarps>
__device__ void QuantizeRow(const float* out, int64_t cols, uint8_t* q, float* scales) {
  const int warp = static_cast<int>(threadIdx.x / kWarp), lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t groups = (cols + kGroup - 1) / kGroup;
  for (int64_t g = warp; g < groups; g += kBlockWarps) {
    const int64_t i0 = g * kGroup;
    const int n = static_cast<int>(cols - i0 < kGroup ? cols - i0 : kGroup);
    float v[kGroupPerLane];
#pragma unroll
    for (int k = 0; k < kGroupPerLane; ++k) {
      const int i = lane + kWarp * k;
      v[k] = i < n ? out[i0 + i] : 0.0f;
    }
    const float scale = internal::QuantizeGroupWarp(v, n, lane, q + i0);
    if (lane == 0) scales[g] = scale;
  }
}

__global__ void __launch_bounds__(kNormThreads)
    AddRmsNormKernel(float* __restrict__ residual, const float* __restrict__ x, const float* __restrict__ w,
                     float* __restrict__ out, uint8_t* __restrict__ q, float* __restrict__ scales, int64_t cols,
                     float eps, bool offset) {
  __shared__ double partial[kNormWarps];
  __shared__ float inv_rms_shared;
  const int64_t row = blockIdx.x;
  float* h = residual + row * cols;
  const float* xr = x + row * cols;
  float* y = out + row * cols;
  double sum = 0.0;
  for (int64_t c = threadIdx.x; c < cols; c += kNormThreads) {
    const float v = h[c] + xr[c];
    h[c] = v;
    sum += static_cast<double>(v) * v;
  }
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int i = 0; i < kNormWarps; ++i) total += partial[i];
    inv_rms_shared = 1.0f / sqrtf(static_cast<float>(total / static_cast<double>(cols)) + eps);
  }
  __syncthreads();
  const float inv_rms = inv_rms_shared;
  for (int64_t c = threadIdx.x; c < cols; c += kNormThreads) {  // each thread reads back what it wrote above
    const float scale = offset ? 1.0f + w[c] : w[c];
    y[c] = scale * (h[c] * inv_rms);
  }
  if (q == nullptr) return;
  __syncthreads();
  QuantizeRow<kNormWarps>(y, cols, q + row * cols, scales + row * ((cols + kGroup - 1) / kGroup));
}

// One warp per (token, 128-group): the group's SiLU*up values, written and (when q is set) quantized by the warp
// that made them, so rows of any length spread over the whole GPU.
__global__ void __launch_bounds__(kThreads)
    SiluMulGroupKernel(const float* __restrict__ gate_up, float* __restrict__ out, uint8_t* __restrict__ q,
                       float* __restrict__ scales, int64_t tokens, int64_t inter, int64_t groups) {
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarp;
  if (item >= tokens * groups) return;  // uniform per warp
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t t = item / groups, g = item % groups;
  const int64_t i0 = g * kGroup;
  const int n = static_cast<int>(inter - i0 < kGroup ? inter - i0 : kGroup);
  const float* gate = gate_up + t * 2 * inter + i0;
  const float* up = gate + inter;
  float* y = out + t * inter + i0;
  float v[kGroupPerLane];
#pragma unroll
  for (int k = 0; k < kGroupPerLane; ++k) {
    const int i = lane + kWarp * k;
    v[k] = 0.0f;
    if (i < n) {
      const float gv = gate[i];
      v[k] = gv / (1.0f + expf(-gv)) * up[i];
      y[i] = v[k];
    }
  }
  if (q == nullptr) return;
  const float scale = internal::QuantizeGroupWarp(v, n, lane, q + t * inter + i0);
  if (lane == 0) scales[item] = scale;  // item = t * groups + g
}

}  // namespace

cudaError_t AddRmsNormFp8(float* residual, const float* x, const float* w, float* out, uint8_t* q, float* scales,
                          int64_t rows, int64_t cols, float eps, bool offset, cudaStream_t stream) {
  if (rows < 0 || cols <= 0 || rows > 0x7fffffff || (q == nullptr) != (scales == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  AddRmsNormKernel<<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(residual, x, w, out, q, scales, cols, eps,
                                                                             offset);
  return cudaGetLastError();
}

cudaError_t SiluMulFp8(const float* gate_up, float* out, uint8_t* q, float* scales, int64_t tokens, int64_t inter,
                       cudaStream_t stream) {
  if (tokens < 0 || inter <= 0 || tokens > 0x7fffffff || (q == nullptr) != (scales == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (tokens == 0) return cudaSuccess;
  const int64_t groups = (inter + kGroup - 1) / kGroup;
  const int64_t blocks = (tokens * groups + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  SiluMulGroupKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(gate_up, out, q, scales, tokens, inter,
                                                                             groups);
  return cudaGetLastError();
}

}  // namespace octet::cuda
