// CPU reference: the gated delta rule of Gated DeltaNet (Qwen3.5's linear attention), recurrent form, fp32 state.
#pragma once

#include <cstdint>

namespace octet::cpu {

// Gates from the projections: beta = sigmoid(b); g = -exp(a_log) * softplus(a + dt_bias).
// a, b, g, beta [tokens, heads]; a_log, dt_bias [heads].
void GdnGates(const float* a, const float* b, const float* a_log, const float* dt_bias, int64_t tokens, int64_t heads,
              float* g, float* beta);

// For each sequence b and value head h (key head h / (v_heads / k_heads)), per token t:
//   q, k = l2norm(q_t), l2norm(k_t) (eps 1e-6); q *= 1/sqrt(k_dim)
//   S = exp(g_t) S;  d = beta_t (v_t - S^T k);  S = S + k d^T;  out_t = S^T q
// S = state[state_slots[b], h] ([k_dim, v_dim]) starts at zero when the sequence has no earlier tokens
// (context_len == query_len) and is left holding the state after its last token.
// qkv [tokens, 2 * k_heads * k_dim + v_heads * v_dim] = [q | k | v] (after the conv); g, beta [tokens, v_heads];
// state [slots, v_heads, k_dim, v_dim]; out [tokens, v_heads, v_dim].
void GatedDeltaRule(const float* qkv, const float* g, const float* beta, const int32_t* query_start,
                    const int32_t* context_lens, const int32_t* state_slots, int64_t num_seqs, int64_t k_heads,
                    int64_t v_heads, int64_t k_dim, int64_t v_dim, float* state, float* out);

}  // namespace octet::cpu
