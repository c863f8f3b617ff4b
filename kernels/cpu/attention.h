// CPU reference: paged KV cache writes and causal attention over it, with fp32, bf16 or FP8 E4M3 caches.
#pragma once

#include <cstdint>

namespace octet::cpu {

// Cache layout: [num_blocks, block_size, kv_heads, head_dim]; a slot is block * block_size + offset.
// k_cache[slot_mapping[t]] = k[t] (same for v); a negative slot means "skip" (padding).
void StoreKv(const float* k, const float* v, const int32_t* slot_mapping, float* k_cache, float* v_cache,
             int64_t tokens, int64_t kv_heads, int64_t head_dim);

// As StoreKv, into a bf16 cache: each value rounded to the nearest bf16, ties to even (FloatToBF16).
void StoreKvBf16(const float* k, const float* v, const int32_t* slot_mapping, uint16_t* k_cache, uint16_t* v_cache,
                 int64_t tokens, int64_t kv_heads, int64_t head_dim);

// As StoreKv, into an FP8 E4M3 cache with one fp32 scale per (token, kv head): each head's head_dim values are one
// group of kernels/cpu/fp8.h's scale rule (scale = amax / 448, or 1 for an all-zero head; q = RNE-satfinite(x /
// scale)). k_scale, v_scale [num_blocks, block_size, kv_heads]: k_scale[slot * kv_heads + h].
void StoreKvFp8(const float* k, const float* v, const int32_t* slot_mapping, uint8_t* k_cache, uint8_t* v_cache,
                float* k_scale, float* v_scale, int64_t tokens, int64_t kv_heads, int64_t head_dim);

// For each sequence b, its queries q[query_start[b] .. query_start[b+1]) are the last tokens of a context of
// context_lens[b] tokens; query j attends causally to cache positions 0 .. context_len - query_len + j.
// q, out [tokens, q_heads, head_dim]; block_tables [num_seqs, max_blocks]; GQA: q head h reads kv head
// h / (q_heads / kv_heads). Softmax in fp32 with max subtraction.
void PagedAttention(const float* q, const float* k_cache, const float* v_cache, const int32_t* query_start,
                    const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                    int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale, float* out);

// PagedAttention over a bf16 cache: each key/value is widened to fp32 (exact), then the fp32 math above.
void PagedAttentionBf16(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, const int32_t* query_start,
                        const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                        int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
                        float* out);

// PagedAttention over an FP8 cache: each key/value is dequantized to fp32 as Fp8E4M3ToFloat(code) * its
// (token, kv head) scale (one fp32 product), then the fp32 math above.
void PagedAttentionFp8(const float* q, const uint8_t* k_cache, const uint8_t* v_cache, const float* k_scale,
                       const float* v_scale, const int32_t* query_start, const int32_t* context_lens,
                       const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs, int64_t q_heads,
                       int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale, float* out);

}  // namespace octet::cpu
