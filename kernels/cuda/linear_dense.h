// The linear layer of weights kept in 16 or 32 bits (recipe `none`, the LM head, Gated DeltaNet's in_proj_a/b):
// y [tokens, out] = x [tokens, in] @ w [out, in]^T, fp32 activations and accumulation, w fp32 or bf16 (widened
// exactly). = cpu::Linear up to the order of the fp32 sums (a few ulp of sum |x w| per output).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

// Up to this many tokens a warp streams each weight row once (decode); above it a shared-memory tiled GEMM.
inline constexpr int64_t kDenseGemvMaxTokens = 8;

template <typename W>
cudaError_t LinearDense(const float* x, const W* w, float* y, int64_t tokens, int64_t in, int64_t out_features,
                        cudaStream_t stream);

}  // namespace octet::cuda
