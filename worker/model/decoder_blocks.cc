#include "worker/model/decoder_blocks.h"

namespace octet {

void AddMlpBlock(Backend& b, const SwiGluMlp& mlp, const Tensor& norm, bool offset, float eps, Tensor& h, Tensor& x,
                 Tensor& gate_up, Tensor& act, Tensor& proj) {
  b.RmsNorm(h, norm, eps, offset, x);
  b.Linear(x, mlp.gate_up, gate_up);
  b.SiluMul(gate_up, act);
  b.Linear(act, mlp.down, proj);
  b.Add(h, proj, h);
}

Tensor LogitsOfRows(Backend& b, const Tensor& h, const Tensor& rows, const Tensor& final_norm, bool offset, float eps,
                    const LinearWeight& lm_head, int64_t vocab_size) {
  // Only the rows that will be sampled go through the final norm and the LM head.
  const int64_t n = rows.numel();
  Tensor last = b.Empty(b.compute_dtype(), {n, h.dim(-1)});
  b.GatherRows(h, rows, last);
  b.RmsNorm(last, final_norm, eps, offset, last);
  Tensor logits = b.Empty(DType::kF32, {n, vocab_size});
  b.Linear(last, lm_head, logits);
  return logits;
}

}  // namespace octet
