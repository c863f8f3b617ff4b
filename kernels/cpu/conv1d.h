// CPU reference: depthwise causal conv1d with SiLU and a rolling per-sequence state (Gated DeltaNet's short conv).
#pragma once

#include <cstdint>

namespace octet::cpu {

// For each sequence b (tokens query_start[b] .. query_start[b+1] of x, the last of context_lens[b] tokens):
//   out[t, c] = silu(sum_j w[c, j] * x_{t - (K-1) + j, c})
// where inputs before this step come from conv_state[state_slots[b]] ([C, K-1], oldest first), or are zero when the
// sequence has no earlier tokens (context_len == query_len). Afterwards the state holds the last K-1 inputs.
// x, out [tokens, C]; w [C, K]; conv_state [slots, C, K-1].
void CausalConv1dSilu(const float* x, const float* w, const int32_t* query_start, const int32_t* context_lens,
                      const int32_t* state_slots, int64_t num_seqs, int64_t channels, int64_t kernel, float* conv_state,
                      float* out);

}  // namespace octet::cpu
