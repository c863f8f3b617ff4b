// CPU reference: gated activations and element-wise ops.
#pragma once

#include <cstdint>

namespace octet::cpu {

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, inter + i]       gate_up [tokens, 2 * inter], out [tokens, inter]
void SiluMul(const float* gate_up, float* out, int64_t tokens, int64_t inter);

// out = a + b over n elements (out may alias a or b).
void Add(const float* a, const float* b, float* out, int64_t n);

// Splits a gated-attention query projection laid out per head as [q | gate]:
// qg [tokens, heads, 2 * head_dim] -> q, gate [tokens, heads, head_dim].
void SplitQueryGate(const float* qg, float* q, float* gate, int64_t tokens, int64_t heads, int64_t head_dim);

// out = x * sigmoid(gate) over n elements (out may alias x).
void SigmoidGate(const float* x, const float* gate, float* out, int64_t n);

}  // namespace octet::cpu
