// ModelConfig: the architecture facts octet needs from a Hugging Face `config.json` (+ `generation_config.json`),
// parsed and validated once at load. Defaults follow transformers' Qwen3Config / Qwen3_5TextConfig.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/runtime/dtype.h"

namespace octet {

enum class ModelFamily {
  kQwen3,   // model_type "qwen3": dense, full attention in every layer
  kQwen35,  // model_type "qwen3_5" (text_config) or "qwen3_5_text": Gated DeltaNet + gated full attention
};

enum class LayerType {
  kFullAttention,    // "full_attention"
  kLinearAttention,  // "linear_attention" (Gated DeltaNet)
};

// `quantization_config` of a pre-quantized checkpoint (only Qwen's block FP8 is supported).
struct QuantizationConfig {
  std::string quant_method;                // "fp8"
  std::string fmt;                         // "e4m3"
  std::string activation_scheme;           // "dynamic"
  std::vector<int64_t> weight_block_size;  // [128, 128]
  std::vector<std::string> modules_to_not_convert;
};

struct ModelConfig {
  std::string model_type;  // as written at the top level of config.json
  ModelFamily family = ModelFamily::kQwen3;
  std::vector<std::string> architectures;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  std::string hidden_act = "silu";
  bool attention_bias = false;
  bool tie_word_embeddings = false;

  // RoPE: from rope_parameters (transformers 5), else rope_scaling / top-level keys (transformers 4).
  std::string rope_type = "default";
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;  // Qwen3.5 default 0.25

  std::optional<int32_t> bos_token_id;
  std::optional<int32_t> pad_token_id;
  std::vector<int32_t> eos_token_ids;  // config.json's, then generation_config.json's, without duplicates

  // "torch_dtype" (transformers 4) or "dtype" (5): the dtype the weights were saved in, if given.
  std::optional<DType> dtype;
  std::optional<QuantizationConfig> quantization;

  // Qwen3.5 hybrid fields (family kQwen35). layer_types is filled for every family (all full attention for qwen3).
  std::vector<LayerType> layer_types;
  int64_t linear_num_key_heads = 0;
  int64_t linear_num_value_heads = 0;
  int64_t linear_key_head_dim = 0;
  int64_t linear_value_head_dim = 0;
  int64_t linear_conv_kernel_dim = 0;
  bool attn_output_gate = false;  // q_proj is 2x wide, out = o_proj(attn * sigmoid(gate))

  // Number of leading dims of each head that RoPE rotates: head_dim * partial_rotary_factor.
  int64_t rotary_dim() const;
  int64_t num_full_attention_layers() const;
  bool IsEos(int32_t token) const;
};

// Parses config.json text, and generation_config.json text when non-empty. Errors: InvalidArgument naming the
// field and the rule; Unimplemented for an unsupported model_type, activation, sliding window or quantization.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view config_json,
                                             std::string_view generation_config_json = {});

// Reads `model_dir`/config.json (NotFound if absent) and `model_dir`/generation_config.json if present.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace octet
