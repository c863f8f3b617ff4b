// The small fp32 ops of the forward pass, each = its kernels/cpu reference (embedding.h, norm.h, rope.h,
// activation.h). Data in and out are fp32 device pointers the caller owns.
//
// Numerics: every op does the CPU's arithmetic in the same order with IEEE division and square root
// (-prec-div/-prec-sqrt), so outputs are bit-exact except where CUDA's expf/sinf/cosf/powf (<= 2 ulp) differ from the
// host libm's (SiLU, sigmoid, RoPE) and RMSNorm's double sum of squares, whose tree order can move fp32(mean) by an
// ulp.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

// out[i, :] = table[rows[i], :]. table [*, cols] (fp32 or bf16, widened exactly), out fp32 [n, cols].
template <typename T>
cudaError_t GatherRows(const T* table, const int32_t* rows, float* out, int64_t n, int64_t cols, cudaStream_t stream);

// out = x / rms(x) * (offset ? 1 + w : w) row-wise; out may alias x. x, out [rows, cols]; w [cols].
cudaError_t RmsNormF32(const float* x, const float* w, float* out, int64_t rows, int64_t cols, float eps, bool offset,
                       cudaStream_t stream);

// Rotate-half RoPE on the first rotary_dim dims of every head, in place. x [tokens, heads, head_dim].
cudaError_t Rope(float* x, const int32_t* positions, int64_t tokens, int64_t heads, int64_t head_dim,
                 int64_t rotary_dim, float theta, cudaStream_t stream);

// out = silu(gate_up[:, :inter]) * gate_up[:, inter:].  gate_up [tokens, 2 * inter], out [tokens, inter].
cudaError_t SiluMul(const float* gate_up, float* out, int64_t tokens, int64_t inter, cudaStream_t stream);

// out = a + b; out may alias a or b.
cudaError_t Add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);

// Per row of 2 * head_dim: q = first half, gate = second half.  qg [rows, 2 * head_dim], q, gate [rows, head_dim].
cudaError_t SplitQueryGate(const float* qg, float* q, float* gate, int64_t rows, int64_t head_dim, cudaStream_t stream);

// out = x * sigmoid(gate), computed as x / (1 + exp(-gate)); out may alias x.
cudaError_t SigmoidGate(const float* x, const float* gate, float* out, int64_t n, cudaStream_t stream);

}  // namespace octet::cuda
