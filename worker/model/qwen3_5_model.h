// Qwen3.5 hybrid decoder (model_type "qwen3_5_text", or "qwen3_5" whose language model it loads): Gated DeltaNet
// linear-attention layers interleaved with gated full-attention layers (see DESIGN.md §3). Mirrors transformers'
// modeling_qwen3_5.py; every RMSNorm except the Gated DeltaNet output norm stores its weight as an offset (1 + w).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/checkpoint.h"
#include "worker/model/model.h"
#include "worker/model/model_config.h"
#include "worker/model/weight_loader.h"

namespace octet {

class Qwen35Model final : public Model {
 public:
  static absl::StatusOr<std::unique_ptr<Qwen35Model>> Load(const ModelConfig& config, const Checkpoint& checkpoint,
                                                           Backend& backend, Fp8Recipe recipe = Fp8Recipe::kNone,
                                                           WeightStats* stats = nullptr);

  KvCacheSpec kv_cache_spec() const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(config_.vocab_size); }
  Tensor Forward(const ForwardBatch& batch, KvCache& cache) override;

 private:
  struct LinearAttention {     // Gated DeltaNet
    LinearWeight in_proj_qkv;  // [2 * Hk * Dk + Hv * Dv, hidden]
    LinearWeight in_proj_z;    // [Hv * Dv, hidden]
    LinearWeight in_proj_b;    // [Hv, hidden]
    LinearWeight in_proj_a;    // [Hv, hidden]
    Tensor conv_weight;        // [conv channels, kernel]
    Tensor dt_bias;            // [Hv]
    Tensor a_log;              // [Hv]
    Tensor norm;               // [Dv], plain weight
    LinearWeight out_proj;     // [hidden, Hv * Dv]
  };
  struct FullAttention {  // gated attention
    LinearWeight q_proj;  // [Hq * 2D, hidden]: per head [q | gate]
    LinearWeight k_proj;  // [Hk * D, hidden]
    LinearWeight v_proj;  // [Hk * D, hidden]
    Tensor q_norm;        // [D], offset
    Tensor k_norm;        // [D], offset
    LinearWeight o_proj;  // [hidden, Hq * D]
  };
  struct Layer {
    bool is_linear = false;
    int32_t cache_index = 0;  // index among layers of its kind (KV cache or recurrent state)
    Tensor input_norm;        // [hidden], offset
    LinearAttention linear;
    FullAttention attention;
    Tensor post_attn_norm;      // [hidden], offset
    LinearWeight gate_up_proj;  // [2 * intermediate, hidden]
    LinearWeight down_proj;     // [hidden, intermediate]
  };

  Qwen35Model(const ModelConfig& config, Backend& backend) : config_(config), backend_(backend) {}
  absl::Status LoadLinearAttention(WeightLoader& w, const std::string& p, LinearAttention& out) const;
  absl::Status LoadFullAttention(WeightLoader& w, const std::string& p, FullAttention& out) const;
  // x's FP8 copy x_fp8 (when the backend made one) feeds the FP8 projections of x.
  void RunLinearAttention(const Layer& layer, const ForwardBatch& batch, KvCache& cache, const Tensor& x,
                          const Fp8Activation& x_fp8, Tensor& out);
  void RunFullAttention(const Layer& layer, const ForwardBatch& batch, KvCache& cache, const Tensor& x,
                        const Fp8Activation& x_fp8, Tensor& out);

  ModelConfig config_;
  Backend& backend_;
  Tensor embed_tokens_;  // [vocab, hidden]
  std::vector<Layer> layers_;
  Tensor final_norm_;     // [hidden], offset
  LinearWeight lm_head_;  // [vocab, hidden]
};

}  // namespace octet
