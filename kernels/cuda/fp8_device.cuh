// Device helpers shared by the kernels that produce FP8 activations: THE SCALE RULE and THE ROUNDING RULE of
// kernels/cpu/fp8.h, for one 128-group held by one warp (4 values a lane, element lane + 32 * k).
#pragma once

#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda::internal {

inline constexpr int kWarp = 32;
inline constexpr int kGroup = 128;                    // kernels/cpu/fp8.h's kFp8Block
inline constexpr int kGroupPerLane = kGroup / kWarp;  // 4
inline constexpr float kE4M3Max = 448.0f;

__device__ __forceinline__ float WarpMax(float v) {
  // max is exact and order-free, so the butterfly gives the CPU's amax bit for bit.
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// THE SCALE RULE: one correctly rounded division; 0 (all-zero or underflowing group) becomes 1.
__device__ __forceinline__ float Fp8Scale(float amax) {
  const float scale = __fdiv_rn(amax, kE4M3Max);
  return scale > 0.0f ? scale : 1.0f;
}

// THE ROUNDING RULE of v / scale: a correctly rounded division (not a reciprocal multiply), then one RNE,
// satfinite conversion (cvt.rn.satfinite.e4m3x2.f32), NaN to 0x7F.
__device__ __forceinline__ uint8_t EncodeE4M3(float v, float scale) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(__fdiv_rn(v, scale), __NV_SATFINITE, __NV_E4M3));
}

// Quantizes one group of n <= 128 values held by a warp, v[k] = value of element lane + 32 * k (0 where that is
// >= n). Writes the codes of the n elements to q and returns the scale (in every lane).
__device__ __forceinline__ float QuantizeGroupWarp(const float (&v)[kGroupPerLane], int n, int lane, uint8_t* q) {
  float amax = 0.0f;
#pragma unroll
  for (int k = 0; k < kGroupPerLane; ++k) amax = fmaxf(amax, fabsf(v[k]));
  const float scale = Fp8Scale(WarpMax(amax));
#pragma unroll
  for (int k = 0; k < kGroupPerLane; ++k) {
    const int i = lane + kWarp * k;
    if (i < n) q[i] = EncodeE4M3(v[k], scale);
  }
  return scale;
}

}  // namespace octet::cuda::internal
