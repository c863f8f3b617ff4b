// Paged KV cache writes: one warp per (token, kv head), bit-exact with the CPU reference.
#include "kernels/cuda/kv_cache.h"

#include "kernels/cuda/fp8_device.cuh"

namespace octet::cuda {
namespace {

using internal::kWarp;

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;

// worker/runtime/dtype.h's FloatToBF16: round to nearest even, NaN stays NaN (quieted).
__device__ __forceinline__ uint16_t FloatToBf16Bits(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

__device__ __forceinline__ void StoreRow(const float* __restrict__ src, float* __restrict__ dst, int64_t n, int lane,
                                         float* /*scale*/) {
  for (int64_t i = lane; i < n; i += kWarp) dst[i] = src[i];
}

__device__ __forceinline__ void StoreRow(const float* __restrict__ src, uint16_t* __restrict__ dst, int64_t n, int lane,
                                         float* /*scale*/) {
  for (int64_t i = lane; i < n; i += kWarp) dst[i] = FloatToBf16Bits(src[i]);
}

// THE SCALE RULE over the whole head (amax by a max butterfly: exact and order-free), then THE ROUNDING RULE.
__device__ __forceinline__ void StoreRow(const float* __restrict__ src, uint8_t* __restrict__ dst, int64_t n, int lane,
                                         float* scale_out) {
  float amax = 0.0f;
  for (int64_t i = lane; i < n; i += kWarp) amax = fmaxf(amax, fabsf(src[i]));
  const float scale = internal::Fp8Scale(internal::WarpMax(amax));
  for (int64_t i = lane; i < n; i += kWarp) dst[i] = internal::EncodeE4M3(src[i], scale);
  if (lane == 0) *scale_out = scale;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    StoreKvKernel(const float* __restrict__ k, const float* __restrict__ v, const int32_t* __restrict__ slot_mapping,
                  int64_t tokens, int64_t kv_heads, int64_t head_dim, T* __restrict__ k_cache, T* __restrict__ v_cache,
                  float* __restrict__ k_scale, float* __restrict__ v_scale) {
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (item >= tokens * kv_heads) return;  // uniform per warp
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const int64_t t = item / kv_heads, h = item % kv_heads;
  const int64_t slot = slot_mapping[t];
  if (slot < 0) return;
  const int64_t src = item * head_dim, dst = (slot * kv_heads + h) * head_dim;
  const int64_t scale_index = slot * kv_heads + h;
  StoreRow(k + src, k_cache + dst, head_dim, lane, k_scale == nullptr ? nullptr : k_scale + scale_index);
  StoreRow(v + src, v_cache + dst, head_dim, lane, v_scale == nullptr ? nullptr : v_scale + scale_index);
}

template <typename T>
cudaError_t Launch(const float* k, const float* v, const int32_t* slot_mapping, int64_t tokens, int64_t kv_heads,
                   int64_t head_dim, void* k_cache, void* v_cache, float* k_scale, float* v_scale,
                   cudaStream_t stream) {
  const int64_t blocks = (tokens * kv_heads + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  StoreKvKernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(k, v, slot_mapping, tokens, kv_heads,
                                                                           head_dim, static_cast<T*>(k_cache),
                                                                           static_cast<T*>(v_cache), k_scale, v_scale);
  return cudaGetLastError();
}

}  // namespace

cudaError_t StoreKv(const float* k, const float* v, const int32_t* slot_mapping, int64_t tokens, int64_t kv_heads,
                    int64_t head_dim, KvCacheDType dtype, void* k_cache, void* v_cache, float* k_scale, float* v_scale,
                    cudaStream_t stream) {
  if (tokens < 0 || kv_heads < 0 || head_dim < 0) return cudaErrorInvalidValue;
  if (tokens == 0 || kv_heads == 0 || head_dim == 0) return cudaSuccess;
  switch (dtype) {
    case KvCacheDType::kF32:
      return Launch<float>(k, v, slot_mapping, tokens, kv_heads, head_dim, k_cache, v_cache, nullptr, nullptr, stream);
    case KvCacheDType::kBF16:
      return Launch<uint16_t>(k, v, slot_mapping, tokens, kv_heads, head_dim, k_cache, v_cache, nullptr, nullptr,
                              stream);
    case KvCacheDType::kFp8E4M3:
      if (k_scale == nullptr || v_scale == nullptr) return cudaErrorInvalidValue;
      return Launch<uint8_t>(k, v, slot_mapping, tokens, kv_heads, head_dim, k_cache, v_cache, k_scale, v_scale,
                             stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace octet::cuda
