// RMSNorm of bf16 rows fused with the residual add before it and the FP8 quantization of its output (the input of
// the next FP8 GEMM), the numerics of cpu::RmsNorm followed by cpu::QuantizeActivationFp8.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

// With h = x, or h = bf16(x + residual) (fp32 add rounded once to bf16, as the residual stream is stored) when
// residual is set, and y = cpu::RmsNorm(h, weight, eps, offset) in fp32:
//   residual_out = h           (when set; may alias residual: each element is read before it is written)
//   out          = bf16(y)     (round to nearest even; when set)
//   out_fp8, out_scales = QuantizeActivationFp8(y): from the fp32 y, not the bf16 one (when set)
// The sum of squares is in double like the CPU's; it is bit-exact whenever that sum is exact in double (its terms
// within a 2^53 range: any bf16 data whose magnitudes span < ~2^12 for cols <= 32768), otherwise the CPU's
// sequential and this kernel's tree order can round it differently (by ~sqrt(cols) * 2^-53 relative), which changes
// fp32(mean), and then inv_rms by one ulp, only when that lies on an fp32 rounding boundary (about 1e-7 of rows).
struct RmsNormArgs {
  const __nv_bfloat16* x = nullptr;         // [rows, cols]
  const __nv_bfloat16* residual = nullptr;  // [rows, cols], optional
  __nv_bfloat16* residual_out = nullptr;    // [rows, cols], optional, needs residual
  const __nv_bfloat16* weight = nullptr;    // [cols]
  __nv_bfloat16* out = nullptr;             // [rows, cols], optional
  uint8_t* out_fp8 = nullptr;               // [rows, cols] E4M3 codes, optional (with out_scales)
  float* out_scales = nullptr;              // [rows, ceil(cols / 128)]
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-6f;
  bool offset = false;  // scale by (1 + weight) (Qwen3.5's norms) instead of weight
};

cudaError_t RmsNorm(const RmsNormArgs& args, cudaStream_t stream);

}  // namespace octet::cuda
