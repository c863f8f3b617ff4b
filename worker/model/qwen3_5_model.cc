#include "worker/model/qwen3_5_model.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "worker/model/decoder_blocks.h"

namespace octet {
namespace {

constexpr char kWrapperPrefix[] = "model.language_model.";  // Qwen3_5ForConditionalGeneration's text model

int64_t ConvChannels(const ModelConfig& c) {
  return 2 * c.linear_num_key_heads * c.linear_key_head_dim + c.linear_num_value_heads * c.linear_value_head_dim;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Qwen35Model>> Qwen35Model::Load(const ModelConfig& config, const Checkpoint& checkpoint,
                                                               Backend& backend, Fp8Recipe recipe, WeightStats* stats) {
  if (config.layer_types.size() != static_cast<size_t>(config.num_hidden_layers)) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: layer_types has ", config.layer_types.size(),
                                                   " entries for ", config.num_hidden_layers, " layers"));
  }
  if (config.linear_num_key_heads <= 0 || config.linear_num_value_heads % config.linear_num_key_heads != 0) {
    return absl::InvalidArgumentError("config.json: linear_num_value_heads must be a multiple of linear_num_key_heads");
  }
  auto model = std::unique_ptr<Qwen35Model>(new Qwen35Model(config, backend));
  // The multimodal checkpoint nests the language model; its vision tower and MTP head are not served.
  const bool wrapped = checkpoint.Find(std::string(kWrapperPrefix) + "embed_tokens.weight") != nullptr;
  WeightLoader body(checkpoint, backend, wrapped ? kWrapperPrefix : "model.", recipe, stats);
  WeightLoader root(checkpoint, backend, "", recipe, stats);
  if (wrapped) {
    int skipped = 0;
    for (const std::string& name : checkpoint.Names()) {
      if (absl::StartsWith(name, "model.visual.") || absl::StartsWith(name, "mtp.")) ++skipped;
    }
    OCTET_LOG(INFO, "model") << "loading the language model of a qwen3_5 checkpoint; skipping " << skipped
                             << " vision and MTP tensors";
  }

  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  OCTET_ASSIGN_OR_RETURN(model->embed_tokens_, body.Load("embed_tokens.weight", {config.vocab_size, hidden}));
  int32_t num_linear = 0, num_full = 0;
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("layers.", i, ".");
    Layer layer;
    layer.is_linear = config.layer_types[i] == LayerType::kLinearAttention;
    layer.cache_index = layer.is_linear ? num_linear++ : num_full++;
    OCTET_ASSIGN_OR_RETURN(layer.input_norm, body.Load(p + "input_layernorm.weight", {hidden}));
    if (layer.is_linear) {
      OCTET_RETURN_IF_ERROR(model->LoadLinearAttention(body, p + "linear_attn.", layer.linear));
    } else {
      OCTET_RETURN_IF_ERROR(model->LoadFullAttention(body, p + "self_attn.", layer.attention));
    }
    OCTET_ASSIGN_OR_RETURN(layer.post_attn_norm, body.Load(p + "post_attention_layernorm.weight", {hidden}));
    OCTET_ASSIGN_OR_RETURN(layer.gate_up_proj,
                           body.LoadStackedLinear({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"},
                                                  {inter, inter}, hidden, LinearRole::kMlp));
    OCTET_ASSIGN_OR_RETURN(layer.down_proj,
                           body.LoadLinear(p + "mlp.down_proj.weight", hidden, inter, LinearRole::kMlp));
    model->layers_.push_back(std::move(layer));
  }
  OCTET_ASSIGN_OR_RETURN(model->final_norm_, body.Load("norm.weight", {hidden}));
  if (config.tie_word_embeddings) {
    if (UsesFp8(recipe, LinearRole::kLmHead)) {
      OCTET_ASSIGN_OR_RETURN(model->lm_head_,
                             body.LoadLinear("embed_tokens.weight", config.vocab_size, hidden, LinearRole::kLmHead));
    } else {
      model->lm_head_ = LinearWeight{model->embed_tokens_, {}};
    }
  } else {
    OCTET_ASSIGN_OR_RETURN(model->lm_head_,
                           root.LoadLinear("lm_head.weight", config.vocab_size, hidden, LinearRole::kLmHead));
  }
  return model;
}

absl::Status Qwen35Model::LoadLinearAttention(WeightLoader& w, const std::string& p, LinearAttention& out) const {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size;
  const int64_t hv = c.linear_num_value_heads;
  const int64_t value_dim = hv * c.linear_value_head_dim;
  const int64_t channels = ConvChannels(c);
  const int64_t kernel = c.linear_conv_kernel_dim;
  OCTET_ASSIGN_OR_RETURN(out.in_proj_qkv,
                         w.LoadLinear(p + "in_proj_qkv.weight", channels, hidden, LinearRole::kLinearAttention));
  OCTET_ASSIGN_OR_RETURN(out.in_proj_z,
                         w.LoadLinear(p + "in_proj_z.weight", value_dim, hidden, LinearRole::kLinearAttention));
  OCTET_ASSIGN_OR_RETURN(out.in_proj_b,
                         w.LoadLinear(p + "in_proj_b.weight", hv, hidden, LinearRole::kLinearAttentionGate));
  OCTET_ASSIGN_OR_RETURN(out.in_proj_a,
                         w.LoadLinear(p + "in_proj_a.weight", hv, hidden, LinearRole::kLinearAttentionGate));
  Tensor conv;
  OCTET_ASSIGN_OR_RETURN(conv, w.Load(p + "conv1d.weight", {channels, 1, kernel}));
  out.conv_weight = conv.View({channels, kernel});
  OCTET_ASSIGN_OR_RETURN(out.dt_bias, w.Load(p + "dt_bias", {hv}));
  OCTET_ASSIGN_OR_RETURN(out.a_log, w.Load(p + "A_log", {hv}));
  OCTET_ASSIGN_OR_RETURN(out.norm, w.Load(p + "norm.weight", {c.linear_value_head_dim}));
  OCTET_ASSIGN_OR_RETURN(out.out_proj,
                         w.LoadLinear(p + "out_proj.weight", hidden, value_dim, LinearRole::kLinearAttention));
  return absl::OkStatus();
}

absl::Status Qwen35Model::LoadFullAttention(WeightLoader& w, const std::string& p, FullAttention& out) const {
  const ModelConfig& c = config_;
  const int64_t hidden = c.hidden_size, d = c.head_dim;
  const int64_t hq = c.num_attention_heads, hk = c.num_key_value_heads;
  const int64_t q_rows = c.attn_output_gate ? 2 * hq * d : hq * d;
  OCTET_ASSIGN_OR_RETURN(out.q_proj, w.LoadLinear(p + "q_proj.weight", q_rows, hidden, LinearRole::kAttention));
  OCTET_ASSIGN_OR_RETURN(out.k_proj, w.LoadLinear(p + "k_proj.weight", hk * d, hidden, LinearRole::kAttention));
  OCTET_ASSIGN_OR_RETURN(out.v_proj, w.LoadLinear(p + "v_proj.weight", hk * d, hidden, LinearRole::kAttention));
  OCTET_ASSIGN_OR_RETURN(out.q_norm, w.Load(p + "q_norm.weight", {d}));
  OCTET_ASSIGN_OR_RETURN(out.k_norm, w.Load(p + "k_norm.weight", {d}));
  OCTET_ASSIGN_OR_RETURN(out.o_proj, w.LoadLinear(p + "o_proj.weight", hidden, hq * d, LinearRole::kAttention));
  return absl::OkStatus();
}

KvCacheSpec Qwen35Model::kv_cache_spec() const {
  const ModelConfig& c = config_;
  KvCacheSpec spec;
  spec.num_layers = static_cast<int32_t>(c.num_full_attention_layers());
  spec.num_kv_heads = static_cast<int32_t>(c.num_key_value_heads);
  spec.head_dim = static_cast<int32_t>(c.head_dim);
  spec.num_recurrent_layers = static_cast<int32_t>(c.num_hidden_layers) - spec.num_layers;
  spec.conv_channels = static_cast<int32_t>(ConvChannels(c));
  spec.conv_kernel = static_cast<int32_t>(c.linear_conv_kernel_dim);
  spec.v_heads = static_cast<int32_t>(c.linear_num_value_heads);
  spec.k_dim = static_cast<int32_t>(c.linear_key_head_dim);
  spec.v_dim = static_cast<int32_t>(c.linear_value_head_dim);
  return spec;
}

void Qwen35Model::RunLinearAttention(const Layer& layer, const ForwardBatch& batch, KvCache& cache, const Tensor& x,
                                     const Fp8Activation& x_fp8, Tensor& out) {
  Backend& b = backend_;
  const ModelConfig& c = config_;
  const DType act = b.compute_dtype();
  const int64_t t = x.dim(0);
  const int64_t hv = c.linear_num_value_heads, dv = c.linear_value_head_dim;
  const LinearAttention& la = layer.linear;
  Tensor mixed = b.Empty(act, {t, ConvChannels(c)});
  Tensor conv_out = b.Empty(act, {t, ConvChannels(c)});
  Tensor z = b.Empty(act, {t, hv * dv});
  Tensor a = b.Empty(act, {t, hv}), beta_in = b.Empty(act, {t, hv});
  Tensor g = b.Empty(DType::kF32, {t, hv}), beta = b.Empty(DType::kF32, {t, hv});
  Tensor core = b.Empty(act, {t, hv, dv});
  b.LinearFp8Input(x, x_fp8, la.in_proj_qkv, mixed);
  b.LinearFp8Input(x, x_fp8, la.in_proj_z, z);
  b.LinearFp8Input(x, x_fp8, la.in_proj_b, beta_in);
  b.LinearFp8Input(x, x_fp8, la.in_proj_a, a);
  b.CausalConv1dSilu(mixed, la.conv_weight, batch.attention, cache.conv_state[layer.cache_index], conv_out);
  b.GdnGates(a, beta_in, la.a_log, la.dt_bias, g, beta);
  b.GatedDeltaRule(conv_out, g, beta, batch.attention, static_cast<int32_t>(c.linear_num_key_heads),
                   static_cast<int32_t>(c.linear_key_head_dim), cache.recurrent_state[layer.cache_index], core);
  Tensor core_rows = core.View({t * hv, dv});
  b.RmsNormGated(core_rows, z.View({t * hv, dv}), la.norm, static_cast<float>(c.rms_norm_eps), core_rows);
  b.Linear(core.View({t, hv * dv}), la.out_proj, out);
}

void Qwen35Model::RunFullAttention(const Layer& layer, const ForwardBatch& batch, KvCache& cache, const Tensor& x,
                                   const Fp8Activation& x_fp8, Tensor& out) {
  Backend& b = backend_;
  const ModelConfig& c = config_;
  const DType act = b.compute_dtype();
  const int64_t t = x.dim(0);
  const int64_t d = c.head_dim, hq = c.num_attention_heads, hk = c.num_key_value_heads;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const FullAttention& fa = layer.attention;
  Tensor q = b.Empty(act, {t, hq, d});
  Tensor gate;
  if (c.attn_output_gate) {
    Tensor qg = b.Empty(act, {t, hq, 2 * d});
    Tensor qg2 = qg.View({t, hq * 2 * d});
    b.LinearFp8Input(x, x_fp8, fa.q_proj, qg2);
    gate = b.Empty(act, {t, hq, d});
    b.SplitQueryGate(qg, q, gate);
  } else {
    Tensor q2 = q.View({t, hq * d});
    b.LinearFp8Input(x, x_fp8, fa.q_proj, q2);
  }
  Tensor k = b.Empty(act, {t, hk, d}), v = b.Empty(act, {t, hk, d});
  Tensor k2 = k.View({t, hk * d}), v2 = v.View({t, hk * d});
  b.LinearFp8Input(x, x_fp8, fa.k_proj, k2);
  b.LinearFp8Input(x, x_fp8, fa.v_proj, v2);
  Tensor q_rows = q.View({t * hq, d}), k_rows = k.View({t * hk, d});
  b.RmsNorm(q_rows, fa.q_norm, eps, /*offset=*/true, q_rows);
  b.RmsNorm(k_rows, fa.k_norm, eps, /*offset=*/true, k_rows);
  b.Rope(q, k, batch.positions, static_cast<int32_t>(c.rotary_dim()), static_cast<float>(c.rope_theta));
  KvLayer& kv = cache.layers[layer.cache_index];
  b.StoreKv(k, v, batch.attention, kv);
  Tensor attn = b.Empty(act, {t, hq, d});
  b.PagedAttention(q, kv, batch.attention, 1.0f / std::sqrt(static_cast<float>(d)), attn);
  if (c.attn_output_gate) b.SigmoidGate(attn, gate, attn);
  b.Linear(attn.View({t, hq * d}), fa.o_proj, out);
}

Tensor Qwen35Model::Forward(const ForwardBatch& batch, KvCache& cache) {
  Backend& b = backend_;
  const DType act = b.compute_dtype();
  const int64_t t = batch.input_ids.numel();
  const int64_t hidden = config_.hidden_size, inter = config_.intermediate_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);

  Tensor h = b.Empty(act, {t, hidden});  // residual stream
  DecoderScratch s{b.Empty(act, {t, hidden}), {}, b.Empty(act, {t, 2 * inter}), b.Empty(act, {t, inter}), {}};
  Tensor proj = b.Empty(act, {t, hidden});
  b.Embedding(embed_tokens_, batch.input_ids, h);
  b.RmsNorm(h, layers_[0].input_norm, eps, /*offset=*/true, s.x);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    if (layer.is_linear) {
      RunLinearAttention(layer, batch, cache, s.x, s.x_fp8, proj);
    } else {
      RunFullAttention(layer, batch, cache, s.x, s.x_fp8, proj);
    }
    MlpBlock(b, {layer.gate_up_proj, layer.down_proj}, layer.post_attn_norm, /*offset=*/true, eps, h, proj, s);
    NextLayerInput(b, l + 1 < layers_.size() ? layers_[l + 1].input_norm : Tensor(), /*offset=*/true, eps, h, proj, s);
  }
  return LogitsOfRows(b, h, batch.logit_rows, final_norm_, /*offset=*/true, eps, lm_head_, config_.vocab_size);
}

}  // namespace octet
