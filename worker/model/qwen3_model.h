// Qwen3 dense decoder (model_type "qwen3"): GQA attention with per-head q/k RMSNorm, full RoPE, SwiGLU MLP.
// Mirrors transformers' modeling_qwen3.py.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/checkpoint.h"
#include "worker/model/model.h"
#include "worker/model/model_config.h"
#include "worker/model/weight_loader.h"

namespace octet {

class Qwen3Model final : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<Qwen3Model>> Load(const ModelConfig& config, const Checkpoint& checkpoint,
                                                          Backend& backend, Fp8Recipe recipe = Fp8Recipe::kNone,
                                                          WeightStats* stats = nullptr);

  KvCacheSpec kv_cache_spec() const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }
  Tensor Forward(const ForwardBatch& batch, KvCache& cache) override;

 private:
  struct Layer {
    Tensor input_norm;          // [hidden]
    LinearWeight q_proj;        // [Hq * D, hidden]
    LinearWeight k_proj;        // [Hk * D, hidden]
    LinearWeight v_proj;        // [Hk * D, hidden]
    Tensor q_norm;              // [D]
    Tensor k_norm;              // [D]
    LinearWeight o_proj;        // [hidden, Hq * D]
    Tensor post_attn_norm;      // [hidden]
    LinearWeight gate_up_proj;  // [2 * intermediate, hidden]: gate rows then up rows
    LinearWeight down_proj;     // [hidden, intermediate]
  };

  Qwen3Model(const ModelConfig& config, Backend& backend) : config_(config), backend_(backend) {}

  ModelConfig config_;
  Backend& backend_;
  Tensor embed_tokens_;  // [vocab, hidden]
  std::vector<Layer> layers_;
  Tensor final_norm_;     // [hidden]
  LinearWeight lm_head_;  // [vocab, hidden]; the embedding when tied
};

}  // namespace octet
