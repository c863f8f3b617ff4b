// Paged KV cache writes (fp32, bf16 or FP8 E4M3 cache), bit for bit cpu::StoreKv / StoreKvBf16 / StoreKvFp8.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

enum class KvCacheDType { kF32, kBF16, kFp8E4M3 };

// Writes tokens' keys and values into a paged cache [num_blocks, block_size, kv_heads, head_dim] at slot_mapping[t]
// (slot = block * block_size + offset; negative = skip), exactly as cpu::StoreKv / StoreKvBf16 / StoreKvFp8
// (bit for bit: bf16 round-to-nearest-even; fp8 per (token, kv head) scale = amax/448 via the same rule, zero -> 1).
// k, v fp32 [tokens, kv_heads, head_dim]; k_scale/v_scale fp32 [num_blocks, block_size, kv_heads] (fp8 only, else
// null). Any head_dim >= 1 (no alignment needed). One warp per (token, kv head).
cudaError_t StoreKv(const float* k, const float* v, const int32_t* slot_mapping, int64_t tokens, int64_t kv_heads,
                    int64_t head_dim, KvCacheDType dtype, void* k_cache, void* v_cache, float* k_scale, float* v_scale,
                    cudaStream_t stream);

}  // namespace octet::cuda
