// The fp32 ops that feed FP8 linear layers, fused with the residual add before them and with the FP8 quantization of
// their output (the next GEMM's input), so a decoder layer spends no separate launches on either:
//   AddRmsNorm: residual += x; out = RmsNorm(residual)             (cpu::Add then cpu::RmsNorm)
//   SiluMul:    out = silu(gate_up[:, :I]) * gate_up[:, I:]        (cpu::SiluMul)
// each with, when q is set, q/scales = QuantizeActivationFp8(out) of the fp32 out just written: the same codes and
// scales as cuda::QuantizeActivationFp8 (and the CPU) give for that out, bit for bit. AddRmsNorm: one block per
// row; SiluMul: one warp per (token, 128-group), which quantizes the values it made.
// Numerics of out: as elementwise.h's RmsNormF32 (double sum of squares in another order: an ulp of fp32(mean) on
// rare rows) and SiluMul (CUDA's expf).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

// residual, x, out [rows, cols] fp32 (out distinct from both); w [cols]; q [rows, cols] E4M3 and scales
// [rows, ceil(cols / 128)] both set or both null.
cudaError_t AddRmsNormFp8(float* residual, const float* x, const float* w, float* out, uint8_t* q, float* scales,
                          int64_t rows, int64_t cols, float eps, bool offset, cudaStream_t stream);

// gate_up [tokens, 2 * inter], out [tokens, inter]; q [tokens, inter] and scales [tokens, ceil(inter / 128)] both set
// or both null.
cudaError_t SiluMulFp8(const float* gate_up, float* out, uint8_t* q, float* scales, int64_t tokens, int64_t inter,
                       cudaStream_t stream);

}  // namespace octet::cuda
