// Pieces every decoder model here shares, written once against the Backend: the SwiGLU MLP block with its
// residual add, and the final norm + LM head over only the rows that sample.
#pragma once

#include <cstdint>

#include "worker/runtime/backend.h"

namespace octet {

// A SwiGLU MLP's weights (gate and up stacked in one weight).
struct SwiGluMlp {
  const LinearWeight& gate_up;  // [2 * intermediate, hidden]
  const LinearWeight& down;     // [hidden, intermediate]
};

// h += down(silu(gate(x)) * up(x)), with x = rmsnorm(h) by `norm` (offset: (1 + w)). x, gate_up, act, proj are
// scratch of [T, hidden], [T, 2I], [T, I], [T, hidden].
void AddMlpBlock(Backend& b, const SwiGluMlp& mlp, const Tensor& norm, bool offset, float eps, Tensor& h, Tensor& x,
                 Tensor& gate_up, Tensor& act, Tensor& proj);

// fp32 logits [N, vocab] of the rows `rows` (i32 [N]) of the residual stream h [T, hidden]: final norm, LM head.
Tensor LogitsOfRows(Backend& b, const Tensor& h, const Tensor& rows, const Tensor& final_norm, bool offset, float eps,
                    const LinearWeight& lm_head, int64_t vocab_size);

}  // namespace octet
