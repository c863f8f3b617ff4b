// CPU reference: paged KV cache writes and causal attention over it.
#pragma once

#include <cstdint>

namespace octet::cpu {

// Cache layout: [num_blocks, block_size, kv_heads, head_dim]; a slot is block * block_size + offset.
// k_cache[slot_mapping[t]] = k[t] (same for v); a negative slot means "skip" (padding).
void StoreKv(const float* k, const float* v, const int32_t* slot_mapping, float* k_cache, float* v_cache,
             int64_t tokens, int64_t kv_heads, int64_t head_dim);

// For each sequence b, its queries q[query_start[b] .. query_start[b+1]) are the last tokens of a context of
// context_lens[b] tokens; query j attends causally to cache positions 0 .. context_len - query_len + j.
// q, out [tokens, q_heads, head_dim]; block_tables [num_seqs, max_blocks]; GQA: q head h reads kv head
// h / (q_heads / kv_heads). Softmax in fp32 with max subtraction.
void PagedAttention(const float* q, const float* k_cache, const float* v_cache, const int32_t* query_start,
                    const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                    int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
                    float* out);

}  // namespace octet::cpu
