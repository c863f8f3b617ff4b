#include "worker/model/decoder_blocks.h"

namespace octet {

void MlpBlock(Backend& b, const SwiGluMlp& mlp, const Tensor& norm, bool offset, float eps, Tensor& h, Tensor& proj,
              DecoderScratch& s) {
  b.AddRmsNorm(h, proj, norm, eps, offset, s.x, &s.x_fp8);
  b.LinearFp8Input(s.x, s.x_fp8, mlp.gate_up, s.gate_up);
  b.SiluMulFp8(s.gate_up, s.act, &s.act_fp8);
  b.LinearFp8Input(s.act, s.act_fp8, mlp.down, proj);
}

void NextLayerInput(Backend& b, const Tensor& next_norm, bool offset, float eps, Tensor& h, const Tensor& proj,
                    DecoderScratch& s) {
  if (next_norm.defined()) {
    b.AddRmsNorm(h, proj, next_norm, eps, offset, s.x, &s.x_fp8);
  } else {
    b.Add(h, proj, h);
  }
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
