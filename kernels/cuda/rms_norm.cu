// RMSNorm (+ residual add, + FP8 quantization of the output): one block per row, the row staged in shared memory.
#include "kernels/cuda/rms_norm.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fp8_device.cuh"

namespace octet::cuda {
namespace {

using internal::kGroup;
using internal::kGroupPerLane;
using internal::kWarp;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;
constexpr int64_t kMaxStaticSmem = 48 * 1024;

__global__ void __launch_bounds__(kThreads) RmsNormKernel(const RmsNormArgs a) {
  extern __shared__ float h[];  // [cols] the norm's input in fp32 (exact widening of bf16)
  __shared__ double warp_sums[kWarps];
  __shared__ float inv_rms_shared;
  const int64_t row = blockIdx.x;
  const int64_t cols = a.cols;
  const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarp, warp = tid / kWarp;
  const __nv_bfloat16* x = a.x + row * cols;

  // 1. h (with the residual add) into shared memory; sum of squares in double. v * v is exact in double (24-bit
  //    significands), so only the additions round, as on the CPU; the order is fixed: strided per thread, a
  //    butterfly per warp, then the warps in order.
  double sum_sq = 0.0;
  for (int64_t c = tid; c < cols; c += kThreads) {
    float v = __bfloat162float(x[c]);
    if (a.residual != nullptr) {
      const __nv_bfloat16 hb = __float2bfloat16_rn(__fadd_rn(v, __bfloat162float(a.residual[row * cols + c])));
      if (a.residual_out != nullptr) a.residual_out[row * cols + c] = hb;
      v = __bfloat162float(hb);
    }
    h[c] = v;
    sum_sq = __dadd_rn(sum_sq, __dmul_rn(static_cast<double>(v), static_cast<double>(v)));
  }
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    sum_sq = __dadd_rn(sum_sq, __shfl_xor_sync(0xffffffffu, sum_sq, offset));
  }
  if (lane == 0) warp_sums[warp] = sum_sq;
  __syncthreads();
  if (tid == 0) {
    double total = 0.0;
    for (int w = 0; w < kWarps; ++w) total = __dadd_rn(total, warp_sums[w]);
    // cpu::RmsNorm: 1.0f / std::sqrt(static_cast<float>(sum_sq / cols) + eps), each step correctly rounded.
    const float mean = __double2float_rn(__ddiv_rn(total, static_cast<double>(cols)));
    inv_rms_shared = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, a.eps)));
  }
  __syncthreads();
  const float inv_rms = inv_rms_shared;

  // 2. y = scale * (h * inv_rms) (two roundings, as the CPU), one warp per 128-group: bf16 out and/or FP8 codes.
  const int64_t groups = (cols + kGroup - 1) / kGroup;
  for (int64_t g = warp; g < groups; g += kWarps) {
    const int64_t c0 = g * kGroup;
    const int n = static_cast<int>(cols - c0 < kGroup ? cols - c0 : kGroup);
    float y[kGroupPerLane];
#pragma unroll
    for (int k = 0; k < kGroupPerLane; ++k) {
      const int i = lane + kWarp * k;
      y[k] = 0.0f;
      if (i < n) {
        const float w = __bfloat162float(a.weight[c0 + i]);
        const float scale = a.offset ? __fadd_rn(1.0f, w) : w;
        y[k] = __fmul_rn(scale, __fmul_rn(h[c0 + i], inv_rms));
        if (a.out != nullptr) a.out[row * cols + c0 + i] = __float2bfloat16_rn(y[k]);
      }
    }
    if (a.out_fp8 != nullptr) {
      const float s = internal::QuantizeGroupWarp(y, n, lane, a.out_fp8 + row * cols + c0);
      if (lane == 0) a.out_scales[row * groups + g] = s;
    }
  }
}

}  // namespace

cudaError_t RmsNorm(const RmsNormArgs& args, cudaStream_t stream) {
  if (args.rows < 0 || args.cols <= 0 || args.x == nullptr || args.weight == nullptr) return cudaErrorInvalidValue;
  if (args.residual_out != nullptr && args.residual == nullptr) return cudaErrorInvalidValue;
  if ((args.out_fp8 == nullptr) != (args.out_scales == nullptr)) return cudaErrorInvalidValue;
  if (args.rows == 0) return cudaSuccess;
  if (args.rows > 0x7fffffff) return cudaErrorInvalidValue;
  const int64_t smem = args.cols * static_cast<int64_t>(sizeof(float));
  if (smem > kMaxStaticSmem) {
    // Rows wider than 12288 need the opt-in shared memory (up to 227 KB on Hopper: 58K columns).
    CUDA_RETURN_IF_ERROR(
        cudaFuncSetAttribute(RmsNormKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  RmsNormKernel<<<static_cast<unsigned>(args.rows), kThreads, static_cast<size_t>(smem), stream>>>(args);
  return cudaGetLastError();
}

}  // namespace octet::cuda
