// Per-token FP8 activation quantization (groups of 128 along the input dim), bit for bit
// cpu::QuantizeActivationFp8: the same E4M3 codes and fp32 scales.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

// x [tokens, in] (T = float or __nv_bfloat16, widened exactly to fp32) -> q [tokens, in] E4M3 codes,
// scales [tokens, ceil(in / 128)] (kernels/cpu/fp8.h's THE SCALE RULE; the last group of a row may be ragged).
template <typename T>
cudaError_t QuantizeActivationFp8(const T* x, int64_t tokens, int64_t in, uint8_t* q, float* scales,
                                  cudaStream_t stream);

}  // namespace octet::cuda
