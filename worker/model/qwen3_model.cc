#include "worker/model/qwen3_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "worker/model/decoder_blocks.h"

namespace octet {

absl::StatusOr<std::unique_ptr<Qwen3Model>> Qwen3Model::Load(const ModelConfig& config, const Checkpoint& checkpoint,
                                                             Backend& backend, Fp8Recipe recipe, WeightStats* stats) {
  auto model = std::unique_ptr<Qwen3Model>(new Qwen3Model(config, backend));
  WeightLoader w(checkpoint, backend, "", recipe, stats);
  const int64_t hidden = config.hidden_size;
  const int64_t d = config.head_dim;
  const int64_t hq = config.num_attention_heads;
  const int64_t hk = config.num_key_value_heads;
  const int64_t inter = config.intermediate_size;
  const int64_t vocab = config.vocab_size;

  OCTET_ASSIGN_OR_RETURN(model->embed_tokens_, w.Load("model.embed_tokens.weight", {vocab, hidden}));
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    Layer layer;
    OCTET_ASSIGN_OR_RETURN(layer.input_norm, w.Load(p + "input_layernorm.weight", {hidden}));
    OCTET_ASSIGN_OR_RETURN(layer.q_proj,
                           w.LoadLinear(p + "self_attn.q_proj.weight", hq * d, hidden, LinearRole::kAttention));
    OCTET_ASSIGN_OR_RETURN(layer.k_proj,
                           w.LoadLinear(p + "self_attn.k_proj.weight", hk * d, hidden, LinearRole::kAttention));
    OCTET_ASSIGN_OR_RETURN(layer.v_proj,
                           w.LoadLinear(p + "self_attn.v_proj.weight", hk * d, hidden, LinearRole::kAttention));
    OCTET_ASSIGN_OR_RETURN(layer.q_norm, w.Load(p + "self_attn.q_norm.weight", {d}));
    OCTET_ASSIGN_OR_RETURN(layer.k_norm, w.Load(p + "self_attn.k_norm.weight", {d}));
    OCTET_ASSIGN_OR_RETURN(layer.o_proj,
                           w.LoadLinear(p + "self_attn.o_proj.weight", hidden, hq * d, LinearRole::kAttention));
    OCTET_ASSIGN_OR_RETURN(layer.post_attn_norm, w.Load(p + "post_attention_layernorm.weight", {hidden}));
    OCTET_ASSIGN_OR_RETURN(layer.gate_up_proj,
                           w.LoadStackedLinear({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"}, {inter, inter},
                                               hidden, LinearRole::kMlp));
    OCTET_ASSIGN_OR_RETURN(layer.down_proj, w.LoadLinear(p + "mlp.down_proj.weight", hidden, inter, LinearRole::kMlp));
    model->layers_.push_back(std::move(layer));
  }
  OCTET_ASSIGN_OR_RETURN(model->final_norm_, w.Load("model.norm.weight", {hidden}));
  if (config.tie_word_embeddings || !w.Has("lm_head.weight")) {
    if (!config.tie_word_embeddings) {
      return absl::InvalidArgumentError("checkpoint has no lm_head.weight and tie_word_embeddings is false");
    }
    // Tied: the LM head is the embedding table (its own copy only when the recipe puts it in FP8).
    if (UsesFp8(recipe, LinearRole::kLmHead)) {
      OCTET_ASSIGN_OR_RETURN(model->lm_head_,
                             w.LoadLinear("model.embed_tokens.weight", vocab, hidden, LinearRole::kLmHead));
    } else {
      model->lm_head_ = LinearWeight{model->embed_tokens_, {}};
    }
  } else {
    OCTET_ASSIGN_OR_RETURN(model->lm_head_, w.LoadLinear("lm_head.weight", vocab, hidden, LinearRole::kLmHead));
  }
  return model;
}

KvCacheSpec Qwen3Model::kv_cache_spec() const {
  return KvCacheSpec{static_cast<int32_t>(config_.num_hidden_layers), static_cast<int32_t>(config_.num_key_value_heads),
                     static_cast<int32_t>(config_.head_dim)};
}

Tensor Qwen3Model::Forward(const ForwardBatch& batch, KvCache& cache) {
  Backend& b = backend_;
  const DType act = b.compute_dtype();
  const int64_t t = batch.input_ids.numel();
  const int64_t hidden = config_.hidden_size;
  const int64_t d = config_.head_dim;
  const int64_t hq = config_.num_attention_heads;
  const int64_t hk = config_.num_key_value_heads;
  const int64_t inter = config_.intermediate_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int32_t rotary_dim = static_cast<int32_t>(d);

  Tensor h = b.Empty(act, {t, hidden});  // residual stream
  DecoderScratch s{b.Empty(act, {t, hidden}), {}, b.Empty(act, {t, 2 * inter}), b.Empty(act, {t, inter}), {}};
  Tensor q = b.Empty(act, {t, hq, d});
  Tensor k = b.Empty(act, {t, hk, d});
  Tensor v = b.Empty(act, {t, hk, d});
  Tensor attn = b.Empty(act, {t, hq, d});
  Tensor proj = b.Empty(act, {t, hidden});  // a block's output before the residual add
  Tensor q2 = q.View({t, hq * d}), k2 = k.View({t, hk * d}), v2 = v.View({t, hk * d});
  Tensor q_rows = q.View({t * hq, d}), k_rows = k.View({t * hk, d});

  b.Embedding(embed_tokens_, batch.input_ids, h);
  b.RmsNorm(h, layers_[0].input_norm, eps, /*offset=*/false, s.x);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    b.LinearFp8Input(s.x, s.x_fp8, layer.q_proj, q2);
    b.LinearFp8Input(s.x, s.x_fp8, layer.k_proj, k2);
    b.LinearFp8Input(s.x, s.x_fp8, layer.v_proj, v2);
    b.RmsNorm(q_rows, layer.q_norm, eps, false, q_rows);
    b.RmsNorm(k_rows, layer.k_norm, eps, false, k_rows);
    b.Rope(q, k, batch.positions, rotary_dim, static_cast<float>(config_.rope_theta));
    b.StoreKv(k, v, batch.attention, cache.layers[l]);
    b.PagedAttention(q, cache.layers[l], batch.attention, scale, attn);
    b.Linear(attn.View({t, hq * d}), layer.o_proj, proj);
    MlpBlock(b, {layer.gate_up_proj, layer.down_proj}, layer.post_attn_norm, /*offset=*/false, eps, h, proj, s);
    NextLayerInput(b, l + 1 < layers_.size() ? layers_[l + 1].input_norm : Tensor(), /*offset=*/false, eps, h, proj, s);
  }
  return LogitsOfRows(b, h, batch.logit_rows, final_norm_, /*offset=*/false, eps, lm_head_, config_.vocab_size);
}

}  // namespace octet
