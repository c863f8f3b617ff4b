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

// A decoder's per-step activations: a block's normed input x [T, hidden], the MLP's gate_up [T, 2I] and act [T, I],
// and the FP8 copies of x and act that a backend may make as it produces them (Backend::AddRmsNorm, SiluMulFp8).
struct DecoderScratch {
  Tensor x;
  Fp8Activation x_fp8;
  Tensor gate_up;
  Tensor act;
  Fp8Activation act_fp8;
};

// The MLP half of a decoder layer: h += proj (the mixer's output), x = rmsnorm(h) by `norm` (offset: (1 + w)), then
// proj = down(silu(gate(x)) * up(x)). The caller adds this proj into h, fused with the next layer's input norm by
// NextLayerInput.
void MlpBlock(Backend& b, const SwiGluMlp& mlp, const Tensor& norm, bool offset, float eps, Tensor& h, Tensor& proj,
              DecoderScratch& s);

// After a layer: h += proj, then the next layer's x = rmsnorm(h) by `next_norm` (with its FP8 copy), or for the last
// layer (next_norm undefined) only the add.
void NextLayerInput(Backend& b, const Tensor& next_norm, bool offset, float eps, Tensor& h, const Tensor& proj,
                    DecoderScratch& s);

// fp32 logits [N, vocab] of the rows `rows` (i32 [N]) of the residual stream h [T, hidden]: final norm, LM head.
Tensor LogitsOfRows(Backend& b, const Tensor& h, const Tensor& rows, const Tensor& final_norm, bool offset, float eps,
                    const LinearWeight& lm_head, int64_t vocab_size);

}  // namespace octet
