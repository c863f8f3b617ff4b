#include "worker/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace octet {
namespace {

using nlohmann::json;

constexpr char kSupportedTypes[] = "qwen3, qwen3_5, qwen3_5_text";
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();  // sizes stay usable as int

// Reads typed fields of one JSON object; error messages carry the file and the dotted field path.
// A field set to null counts as absent, as in transformers.
class FieldReader {
 public:
  FieldReader(const json& obj, std::string file, std::string prefix)
      : obj_(obj), file_(std::move(file)), prefix_(std::move(prefix)) {}

  const json* Get(const std::string& key) const {
    const auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  bool Has(const std::string& key) const { return Get(key) != nullptr; }
  std::string Name(const std::string& key) const { return absl::StrCat(prefix_, key); }

  absl::Status Error(const std::string& key, const std::string& rule) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": '", Name(key), "' ", rule));
  }
  absl::Status TypeError(const std::string& key, const std::string& type) const {
    return Error(key, absl::StrCat("must be ", type, ", got ", Get(key)->dump()));
  }

  // Missing with no default: "missing required field".
  absl::Status Int(const std::string& key, int64_t* out, std::optional<int64_t> def = std::nullopt) const {
    const json* v = Get(key);
    if (v == nullptr) {
      if (!def) return absl::InvalidArgumentError(absl::StrCat(file_, ": missing required field '", Name(key), "'"));
      *out = *def;
      return absl::OkStatus();
    }
    if (!v->is_number_integer()) return TypeError(key, "an integer");
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(kMaxSize)) {
      return Error(key, absl::StrCat("must be at most ", kMaxSize, ", got ", v->dump()));
    }
    *out = v->get<int64_t>();
    return absl::OkStatus();
  }
  absl::Status Double(const std::string& key, double* out, double def) const {
    const json* v = Get(key);
    if (v == nullptr) {
      *out = def;
      return absl::OkStatus();
    }
    if (!v->is_number()) return TypeError(key, "a number");
    *out = v->get<double>();
    return absl::OkStatus();
  }
  absl::Status Bool(const std::string& key, bool* out, bool def) const {
    const json* v = Get(key);
    if (v == nullptr) {
      *out = def;
      return absl::OkStatus();
    }
    if (!v->is_boolean()) return TypeError(key, "true or false");
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status String(const std::string& key, std::string* out, const std::string& def) const {
    const json* v = Get(key);
    if (v == nullptr) {
      *out = def;
      return absl::OkStatus();
    }
    if (!v->is_string()) return TypeError(key, "a string");
    *out = v->get<std::string>();
    return absl::OkStatus();
  }
  // A token id, or (list_ok) a list of them, appended to `out` without duplicates.
  absl::Status TokenIds(const std::string& key, bool list_ok, std::vector<int32_t>* out) const {
    const json* v = Get(key);
    if (v == nullptr) return absl::OkStatus();
    const auto add = [&](const json& id) -> absl::Status {
      if (!id.is_number_unsigned() || id.get<uint64_t>() > static_cast<uint64_t>(kMaxSize)) {
        return TypeError(key, list_ok ? "a token id or a list of token ids" : "a token id");
      }
      const auto token = static_cast<int32_t>(id.get<uint64_t>());
      if (std::find(out->begin(), out->end(), token) == out->end()) out->push_back(token);
      return absl::OkStatus();
    };
    if (!v->is_array()) return add(*v);
    if (!list_ok) return TypeError(key, "a token id");
    for (const json& id : *v) {
      if (absl::Status s = add(id); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  const json& obj_;
  std::string file_;
  std::string prefix_;
};

absl::Status RequirePositive(const FieldReader& r, const std::string& key, int64_t v) {
  if (v <= 0) return r.Error(key, absl::StrCat("must be positive, got ", v));
  return absl::OkStatus();
}

std::optional<DType> DTypeFromTorchName(std::string_view s) {
  if (s == "float32") return DType::kF32;
  if (s == "float16") return DType::kF16;
  if (s == "bfloat16") return DType::kBF16;
  if (s == "float8_e4m3fn") return DType::kF8E4M3;
  return std::nullopt;
}

absl::StatusOr<json> ParseObject(std::string_view text, const std::string& file) {
  json j = json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(file, ": not valid JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  return j;
}

// RoPE: transformers 5 keeps rope_theta and partial_rotary_factor in `rope_parameters`; 4 used top-level keys
// and `rope_scaling`. The first place that has a value wins.
absl::Status ParseRope(const FieldReader& text, ModelConfig* c) {
  double top_theta = 10000.0;
  double top_partial = c->family == ModelFamily::kQwen35 ? 0.25 : 1.0;
  OCTET_RETURN_IF_ERROR(text.Double("rope_theta", &top_theta, top_theta));
  OCTET_RETURN_IF_ERROR(text.Double("partial_rotary_factor", &top_partial, top_partial));
  c->rope_theta = top_theta;
  c->partial_rotary_factor = top_partial;
  for (const char* key : {"rope_scaling", "rope_parameters"}) {  // later wins: rope_parameters is authoritative
    const json* p = text.Get(key);
    if (p == nullptr) continue;
    if (!p->is_object()) return text.TypeError(key, "an object");
    const FieldReader rope(*p, "config.json", text.Name(absl::StrCat(key, ".")));
    OCTET_RETURN_IF_ERROR(rope.Double("rope_theta", &c->rope_theta, c->rope_theta));
    OCTET_RETURN_IF_ERROR(rope.Double("partial_rotary_factor", &c->partial_rotary_factor, c->partial_rotary_factor));
    std::string type;
    OCTET_RETURN_IF_ERROR(rope.String("rope_type", &type, ""));
    if (type.empty()) OCTET_RETURN_IF_ERROR(rope.String("type", &type, ""));  // transformers 4 spelling
    if (!type.empty()) c->rope_type = type;
  }
  if (!(c->rope_theta > 0)) return text.Error("rope_theta", absl::StrCat("must be positive, got ", c->rope_theta));
  if (!(c->partial_rotary_factor > 0 && c->partial_rotary_factor <= 1)) {
    return text.Error("partial_rotary_factor", absl::StrCat("must be in (0, 1], got ", c->partial_rotary_factor));
  }
  const double rot = c->head_dim * c->partial_rotary_factor;
  if (static_cast<int64_t>(rot) % 2 != 0 || static_cast<int64_t>(rot) < 2) {
    return text.Error("partial_rotary_factor",
                      absl::StrCat("times head_dim ", c->head_dim, " must give an even rotary dim, got ", rot));
  }
  return absl::OkStatus();
}

absl::Status ParseLayerTypes(const FieldReader& text, ModelConfig* c) {
  const bool hybrid = c->family == ModelFamily::kQwen35;
  if (const json* types = text.Get("layer_types")) {
    if (!types->is_array()) return text.TypeError("layer_types", "a list of strings");
    if (static_cast<int64_t>(types->size()) != c->num_hidden_layers) {
      return text.Error("layer_types", absl::StrCat("has ", types->size(), " entries but num_hidden_layers is ",
                                                    c->num_hidden_layers));
    }
    for (const json& t : *types) {
      const std::string s = t.is_string() ? t.get<std::string>() : t.dump();
      if (s == "full_attention" || s == "attention" || (!hybrid && s == "sliding_attention")) {
        // Qwen3 marks layers "sliding_attention" but slides only with use_sliding_window, rejected below.
        c->layer_types.push_back(LayerType::kFullAttention);
      } else if (hybrid && (s == "linear_attention" || s == "mamba")) {
        c->layer_types.push_back(LayerType::kLinearAttention);
      } else {
        return text.Error("layer_types",
                          absl::StrCat("has unsupported entry ", t.dump(), " (supported: ",
                                       hybrid ? "full_attention, linear_attention" : "full_attention", ")"));
      }
    }
    return absl::OkStatus();
  }
  int64_t interval = hybrid ? 4 : 1;
  if (hybrid) OCTET_RETURN_IF_ERROR(text.Int("full_attention_interval", &interval, 4));
  OCTET_RETURN_IF_ERROR(RequirePositive(text, "full_attention_interval", interval));
  for (int64_t i = 0; i < c->num_hidden_layers; ++i) {
    c->layer_types.push_back((i + 1) % interval == 0 ? LayerType::kFullAttention : LayerType::kLinearAttention);
  }
  return absl::OkStatus();
}

absl::Status ParseHybrid(const FieldReader& text, ModelConfig* c) {
  OCTET_RETURN_IF_ERROR(text.Int("linear_num_key_heads", &c->linear_num_key_heads, 16));
  OCTET_RETURN_IF_ERROR(text.Int("linear_num_value_heads", &c->linear_num_value_heads, 32));
  OCTET_RETURN_IF_ERROR(text.Int("linear_key_head_dim", &c->linear_key_head_dim, 128));
  OCTET_RETURN_IF_ERROR(text.Int("linear_value_head_dim", &c->linear_value_head_dim, 128));
  OCTET_RETURN_IF_ERROR(text.Int("linear_conv_kernel_dim", &c->linear_conv_kernel_dim, 4));
  OCTET_RETURN_IF_ERROR(text.Bool("attn_output_gate", &c->attn_output_gate, true));
  for (const auto& [key, v] : {std::pair{"linear_num_key_heads", c->linear_num_key_heads},
                               {"linear_num_value_heads", c->linear_num_value_heads},
                               {"linear_key_head_dim", c->linear_key_head_dim},
                               {"linear_value_head_dim", c->linear_value_head_dim},
                               {"linear_conv_kernel_dim", c->linear_conv_kernel_dim}}) {
    OCTET_RETURN_IF_ERROR(RequirePositive(text, key, v));
  }
  if (c->linear_num_value_heads % c->linear_num_key_heads != 0) {
    return text.Error("linear_num_value_heads",
                      absl::StrCat("(", c->linear_num_value_heads, ") must be a multiple of linear_num_key_heads (",
                                   c->linear_num_key_heads, ")"));
  }
  return absl::OkStatus();
}

absl::Status ParseQuantization(const FieldReader& r, ModelConfig* c) {
  const json* q = r.Get("quantization_config");
  if (q == nullptr) return absl::OkStatus();
  if (!q->is_object()) return r.TypeError("quantization_config", "an object");
  const FieldReader qr(*q, "config.json", r.Name("quantization_config."));
  QuantizationConfig out;
  OCTET_RETURN_IF_ERROR(qr.String("quant_method", &out.quant_method, ""));
  if (out.quant_method != "fp8") {
    return absl::UnimplementedError(absl::StrCat("config.json: ", qr.Name("quant_method"), " '", out.quant_method,
                                                 "' is not supported; supported: fp8"));
  }
  OCTET_RETURN_IF_ERROR(qr.String("fmt", &out.fmt, "e4m3"));
  OCTET_RETURN_IF_ERROR(qr.String("activation_scheme", &out.activation_scheme, "dynamic"));
  if (out.fmt != "e4m3") return qr.Error("fmt", absl::StrCat("must be \"e4m3\", got \"", out.fmt, "\""));
  if (const json* b = qr.Get("weight_block_size")) {
    if (!b->is_array() || b->size() != 2 || !(*b)[0].is_number_unsigned() || !(*b)[1].is_number_unsigned() ||
        (*b)[0].get<uint64_t>() == 0 || (*b)[1].get<uint64_t>() == 0 || (*b)[0].get<uint64_t>() > 65536 ||
        (*b)[1].get<uint64_t>() > 65536) {
      return qr.TypeError("weight_block_size", "[rows, cols] of positive integers");
    }
    out.weight_block_size = {(*b)[0].get<int64_t>(), (*b)[1].get<int64_t>()};
  }
  if (const json* m = qr.Get("modules_to_not_convert")) {
    if (!m->is_array()) return qr.TypeError("modules_to_not_convert", "a list of strings");
    for (const json& name : *m) {
      if (!name.is_string()) return qr.TypeError("modules_to_not_convert", "a list of strings");
      out.modules_to_not_convert.push_back(name.get<std::string>());
    }
  }
  c->quantization = std::move(out);
  return absl::OkStatus();
}

absl::Status ParseInto(const json& top, ModelConfig* c) {
  const FieldReader top_r(top, "config.json", "");
  OCTET_RETURN_IF_ERROR(top_r.String("model_type", &c->model_type, ""));
  if (c->model_type.empty()) return top_r.Error("model_type", "is required");
  if (c->model_type == "qwen3") {
    c->family = ModelFamily::kQwen3;
  } else if (c->model_type == "qwen3_5" || c->model_type == "qwen3_5_text") {
    c->family = ModelFamily::kQwen35;
  } else {
    return absl::UnimplementedError(
        absl::StrCat("model_type ", c->model_type, " is not supported; supported: ", kSupportedTypes));
  }
  if (const json* a = top_r.Get("architectures"); a != nullptr && a->is_array()) {
    for (const json& name : *a) {
      if (name.is_string()) c->architectures.push_back(name.get<std::string>());
    }
  }

  // Qwen3.5's config.json wraps the language model in text_config (beside vision_config).
  const json* text_obj = &top;
  if (c->model_type == "qwen3_5") {
    text_obj = top_r.Get("text_config");
    if (text_obj == nullptr || !text_obj->is_object()) return top_r.Error("text_config", "must be an object");
  }
  const FieldReader text(*text_obj, "config.json", text_obj == &top ? "" : "text_config.");
  const bool hybrid = c->family == ModelFamily::kQwen35;

  OCTET_RETURN_IF_ERROR(text.Int("vocab_size", &c->vocab_size));
  OCTET_RETURN_IF_ERROR(text.Int("hidden_size", &c->hidden_size));
  OCTET_RETURN_IF_ERROR(text.Int("intermediate_size", &c->intermediate_size));
  OCTET_RETURN_IF_ERROR(text.Int("num_hidden_layers", &c->num_hidden_layers));
  OCTET_RETURN_IF_ERROR(text.Int("num_attention_heads", &c->num_attention_heads));
  for (const auto& [key, v] : {std::pair{"vocab_size", c->vocab_size},
                               {"hidden_size", c->hidden_size},
                               {"intermediate_size", c->intermediate_size},
                               {"num_hidden_layers", c->num_hidden_layers},
                               {"num_attention_heads", c->num_attention_heads}}) {
    OCTET_RETURN_IF_ERROR(RequirePositive(text, key, v));
  }
  // transformers defaults: Qwen3Config num_key_value_heads = heads, head_dim 128; Qwen3_5TextConfig 4 and 256.
  OCTET_RETURN_IF_ERROR(text.Int("num_key_value_heads", &c->num_key_value_heads, hybrid ? 4 : c->num_attention_heads));
  OCTET_RETURN_IF_ERROR(text.Int("head_dim", &c->head_dim, hybrid ? 256 : 128));
  OCTET_RETURN_IF_ERROR(text.Int("max_position_embeddings", &c->max_position_embeddings, 32768));
  OCTET_RETURN_IF_ERROR(RequirePositive(text, "num_key_value_heads", c->num_key_value_heads));
  OCTET_RETURN_IF_ERROR(RequirePositive(text, "head_dim", c->head_dim));
  OCTET_RETURN_IF_ERROR(RequirePositive(text, "max_position_embeddings", c->max_position_embeddings));
  if (c->num_attention_heads % c->num_key_value_heads != 0) {
    return text.Error("num_attention_heads",
                      absl::StrCat("(", c->num_attention_heads, ") must be a multiple of num_key_value_heads (",
                                   c->num_key_value_heads, ")"));
  }
  if (c->head_dim % 2 != 0) return text.Error("head_dim", absl::StrCat("must be even for RoPE, got ", c->head_dim));

  OCTET_RETURN_IF_ERROR(text.Double("rms_norm_eps", &c->rms_norm_eps, 1e-6));
  if (!(c->rms_norm_eps > 0 && c->rms_norm_eps < 1)) {
    return text.Error("rms_norm_eps", absl::StrCat("must be in (0, 1), got ", c->rms_norm_eps));
  }
  OCTET_RETURN_IF_ERROR(text.String("hidden_act", &c->hidden_act, "silu"));
  if (c->hidden_act != "silu" && c->hidden_act != "swish") {
    return absl::UnimplementedError(absl::StrCat("config.json: ", text.Name("hidden_act"), " '", c->hidden_act,
                                                 "' is not supported; supported: silu"));
  }
  OCTET_RETURN_IF_ERROR(text.Bool("attention_bias", &c->attention_bias, false));
  bool sliding = false;
  OCTET_RETURN_IF_ERROR(text.Bool("use_sliding_window", &sliding, false));
  if (sliding) {
    return absl::UnimplementedError(
        absl::StrCat("config.json: ", text.Name("use_sliding_window"), " true is not supported"));
  }

  // Keys a multimodal wrapper may hold at either level: the top level wins, as for Qwen3_5Config.
  OCTET_RETURN_IF_ERROR(text.Bool("tie_word_embeddings", &c->tie_word_embeddings, false));
  OCTET_RETURN_IF_ERROR(top_r.Bool("tie_word_embeddings", &c->tie_word_embeddings, c->tie_word_embeddings));
  for (const FieldReader* r : {&text, &top_r}) {
    std::vector<int32_t> bos, pad;
    OCTET_RETURN_IF_ERROR(r->TokenIds("bos_token_id", /*list_ok=*/false, &bos));
    OCTET_RETURN_IF_ERROR(r->TokenIds("pad_token_id", /*list_ok=*/false, &pad));
    if (!c->bos_token_id && !bos.empty()) c->bos_token_id = bos[0];
    if (!c->pad_token_id && !pad.empty()) c->pad_token_id = pad[0];
    OCTET_RETURN_IF_ERROR(r->TokenIds("eos_token_id", /*list_ok=*/true, &c->eos_token_ids));
    if (!c->dtype) {
      for (const char* key : {"dtype", "torch_dtype"}) {
        std::string name;
        OCTET_RETURN_IF_ERROR(r->String(key, &name, ""));
        if (name.empty() || c->dtype) continue;
        c->dtype = DTypeFromTorchName(name);
        if (!c->dtype) OCTET_LOG(WARNING, "model") << "config.json: ignoring unknown " << key << " '" << name << "'";
      }
    }
  }
  OCTET_RETURN_IF_ERROR(ParseQuantization(top_r.Has("quantization_config") ? top_r : text, c));

  OCTET_RETURN_IF_ERROR(ParseRope(text, c));
  OCTET_RETURN_IF_ERROR(ParseLayerTypes(text, c));
  if (hybrid) OCTET_RETURN_IF_ERROR(ParseHybrid(text, c));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

int64_t ModelConfig::rotary_dim() const { return static_cast<int64_t>(head_dim * partial_rotary_factor); }

int64_t ModelConfig::num_full_attention_layers() const {
  return std::count(layer_types.begin(), layer_types.end(), LayerType::kFullAttention);
}

bool ModelConfig::IsEos(int32_t token) const {
  return std::find(eos_token_ids.begin(), eos_token_ids.end(), token) != eos_token_ids.end();
}

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view config_json, std::string_view generation_config_json) {
  OCTET_ASSIGN_OR_RETURN(const json top, ParseObject(config_json, "config.json"));
  ModelConfig c;
  OCTET_RETURN_IF_ERROR(ParseInto(top, &c));

  if (!generation_config_json.empty()) {
    OCTET_ASSIGN_OR_RETURN(const json gen, ParseObject(generation_config_json, "generation_config.json"));
    const FieldReader gen_r(gen, "generation_config.json", "");
    OCTET_RETURN_IF_ERROR(gen_r.TokenIds("eos_token_id", /*list_ok=*/true, &c.eos_token_ids));
    std::vector<int32_t> bos;
    OCTET_RETURN_IF_ERROR(gen_r.TokenIds("bos_token_id", /*list_ok=*/false, &bos));
    if (!c.bos_token_id && !bos.empty()) c.bos_token_id = bos[0];
  }
  const auto check_id = [&](const std::string& what, int32_t id) -> absl::Status {
    if (id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", id, " is outside the vocabulary (vocab_size ", c.vocab_size, ")"));
    }
    return absl::OkStatus();
  };
  for (int32_t id : c.eos_token_ids) OCTET_RETURN_IF_ERROR(check_id("eos_token_id", id));
  if (c.bos_token_id) OCTET_RETURN_IF_ERROR(check_id("bos_token_id", *c.bos_token_id));
  if (c.pad_token_id) OCTET_RETURN_IF_ERROR(check_id("pad_token_id", *c.pad_token_id));
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::filesystem::path dir(model_dir);
  std::error_code ec;
  if (!std::filesystem::exists(dir / "config.json", ec)) {
    return absl::NotFoundError(absl::StrCat("model folder ", model_dir, " has no config.json"));
  }
  OCTET_ASSIGN_OR_RETURN(const std::string config, ReadFile(dir / "config.json"));
  std::string generation;
  if (std::filesystem::exists(dir / "generation_config.json", ec)) {
    OCTET_ASSIGN_OR_RETURN(generation, ReadFile(dir / "generation_config.json"));
  }
  absl::StatusOr<ModelConfig> parsed = ParseModelConfig(config, generation);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(), absl::StrCat(model_dir, "/", parsed.status().message()));
  }
  return parsed;
}

}  // namespace octet
