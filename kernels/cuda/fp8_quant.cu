// Per-token FP8 activation quantization: one warp per (token, 128-group), bit-exact with the CPU reference.
#include "kernels/cuda/fp8_quant.h"

#include "kernels/cuda/fp8_device.cuh"

namespace octet::cuda {
namespace {

using internal::kGroup;
using internal::kGroupPerLane;
using internal::kWarp;

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__global__ void __launch_bounds__(kThreads)
    QuantizeActivationFp8Kernel(const T* __restrict__ x, int64_t tokens, int64_t in, int64_t groups,
                                uint8_t* __restrict__ q, float* __restrict__ scales) {
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (item >= tokens * groups) return;  // uniform per warp
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t t = item / groups, g = item % groups;
  const int64_t i0 = g * kGroup;
  const int n = static_cast<int>(in - i0 < kGroup ? in - i0 : kGroup);
  const T* xg = x + t * in + i0;
  float v[kGroupPerLane];
#pragma unroll
  for (int k = 0; k < kGroupPerLane; ++k) {
    const int i = lane + kWarp * k;  // lanes read consecutive elements: coalesced
    v[k] = i < n ? ToFloat(xg[i]) : 0.0f;
  }
  const float scale = internal::QuantizeGroupWarp(v, n, lane, q + t * in + i0);
  if (lane == 0) scales[item] = scale;  // item = t * groups + g
}

}  // namespace

template <typename T>
cudaError_t QuantizeActivationFp8(const T* x, int64_t tokens, int64_t in, uint8_t* q, float* scales,
                                  cudaStream_t stream) {
  if (tokens < 0 || in < 0) return cudaErrorInvalidValue;
  if (tokens == 0 || in == 0) return cudaSuccess;
  const int64_t groups = (in + kGroup - 1) / kGroup;
  const int64_t blocks = (tokens * groups + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  QuantizeActivationFp8Kernel<T>
      <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(x, tokens, in, groups, q, scales);
  return cudaGetLastError();
}

template cudaError_t QuantizeActivationFp8<float>(const float*, int64_t, int64_t, uint8_t*, float*, cudaStream_t);
template cudaError_t QuantizeActivationFp8<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, uint8_t*, float*,
                                                          cudaStream_t);

}  // namespace octet::cuda
