#include "worker/model/model_config.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/model/safetensors_test_util.h"

namespace octet {
namespace {

using ::octet::testing::ScopedTempDir;
using ::octet::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

// Qwen3-0.6B's config.json as transformers 4 wrote it.
json Qwen3V4() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
    "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true,
    "use_sliding_window": false, "vocab_size": 151936})");
}

// A tiny Qwen3 as transformers 5 saves it: rope_parameters, dtype, layer_types.
json Qwen3V5() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "dtype": "float32",
    "hidden_size": 96, "intermediate_size": 160, "num_hidden_layers": 3, "num_attention_heads": 6,
    "num_key_value_heads": 1, "head_dim": 32, "vocab_size": 2048, "max_position_embeddings": 512,
    "rms_norm_eps": 1e-06, "tie_word_embeddings": false, "eos_token_id": [0, 1], "bos_token_id": null,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
    "layer_types": ["full_attention", "full_attention", "full_attention"]})");
}

// Qwen3.5-27B's shape: multimodal wrapper with text_config.
json Qwen35() {
  json text = json::parse(R"({
    "model_type": "qwen3_5_text", "hidden_size": 5120, "intermediate_size": 17408, "num_hidden_layers": 8,
    "num_attention_heads": 24, "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 248320,
    "max_position_embeddings": 262144, "rms_norm_eps": 1e-06, "eos_token_id": 248044,
    "linear_num_key_heads": 16, "linear_num_value_heads": 48, "linear_key_head_dim": 128,
    "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4, "attn_output_gate": true,
    "full_attention_interval": 4, "dtype": "bfloat16",
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000, "partial_rotary_factor": 0.25,
                        "mrope_section": [11, 11, 10], "mrope_interleaved": true}})");
  return {{"architectures", {"Qwen3_5ForConditionalGeneration"}},
          {"model_type", "qwen3_5"},
          {"tie_word_embeddings", false},
          {"text_config", text},
          {"vision_config", {{"depth", 27}}}};
}

absl::StatusOr<ModelConfig> Parse(const json& j, const std::string& generation = "") {
  return ParseModelConfig(j.dump(), generation);
}

TEST(ModelConfigTest, ParsesQwen3Transformers4) {
  auto c = Parse(Qwen3V4());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "qwen3");
  EXPECT_EQ(c->family, ModelFamily::kQwen3);
  EXPECT_THAT(c->architectures, ElementsAre("Qwen3ForCausalLM"));
  EXPECT_EQ(c->vocab_size, 151936);
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 16);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // != hidden / heads = 64
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c->partial_rotary_factor, 1.0);
  EXPECT_EQ(c->rotary_dim(), 128);
  EXPECT_EQ(c->rope_type, "default");
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 151643);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645));
  EXPECT_TRUE(c->IsEos(151645));
  EXPECT_FALSE(c->IsEos(151643));
  EXPECT_EQ(c->dtype, DType::kBF16);
  EXPECT_FALSE(c->quantization.has_value());
  EXPECT_EQ(c->layer_types.size(), 28u);
  EXPECT_EQ(c->num_full_attention_layers(), 28);
  EXPECT_FALSE(c->attn_output_gate);
}

TEST(ModelConfigTest, ParsesQwen3Transformers5) {
  auto c = Parse(Qwen3V5());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->num_key_value_heads, 1);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_THAT(c->eos_token_ids, ElementsAre(0, 1));
  EXPECT_EQ(c->dtype, DType::kF32);
}

TEST(ModelConfigTest, RopeParametersWinOverLegacyKeys) {
  json j = Qwen3V5();
  j["rope_theta"] = 5.0;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}, {"rope_theta", 7.0}};
  j["rope_parameters"] = {{"rope_theta", 123456.0}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->rope_theta, 123456.0);
  EXPECT_EQ(c->rope_type, "linear");
  j.erase("rope_parameters");
  EXPECT_DOUBLE_EQ(Parse(j)->rope_theta, 7.0);
  j.erase("rope_scaling");
  EXPECT_DOUBLE_EQ(Parse(j)->rope_theta, 5.0);
}

TEST(ModelConfigTest, DefaultsFollowTransformers) {
  json j = Qwen3V5();
  for (const char* key : {"num_key_value_heads", "head_dim", "rms_norm_eps", "rope_parameters",
                          "max_position_embeddings", "tie_word_embeddings", "layer_types", "dtype"}) {
    j.erase(key);
  }
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_key_value_heads, 6);
  EXPECT_EQ(c->head_dim, 128);  // Qwen3Config's default, not hidden / heads
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->num_full_attention_layers(), 3);
  EXPECT_FALSE(c->dtype.has_value());
}

TEST(ModelConfigTest, ParsesQwen35TextConfig) {
  auto c = Parse(Qwen35());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "qwen3_5");
  EXPECT_EQ(c->family, ModelFamily::kQwen35);
  EXPECT_EQ(c->hidden_size, 5120);
  EXPECT_EQ(c->num_attention_heads, 24);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e7);
  EXPECT_DOUBLE_EQ(c->partial_rotary_factor, 0.25);
  EXPECT_EQ(c->rotary_dim(), 64);
  EXPECT_THAT(c->layer_types,
              ElementsAre(LayerType::kLinearAttention, LayerType::kLinearAttention, LayerType::kLinearAttention,
                          LayerType::kFullAttention, LayerType::kLinearAttention, LayerType::kLinearAttention,
                          LayerType::kLinearAttention, LayerType::kFullAttention));
  EXPECT_EQ(c->num_full_attention_layers(), 2);
  EXPECT_EQ(c->linear_num_key_heads, 16);
  EXPECT_EQ(c->linear_num_value_heads, 48);
  EXPECT_EQ(c->linear_key_head_dim, 128);
  EXPECT_EQ(c->linear_value_head_dim, 128);
  EXPECT_EQ(c->linear_conv_kernel_dim, 4);
  EXPECT_TRUE(c->attn_output_gate);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(248044));
  EXPECT_EQ(c->dtype, DType::kBF16);
}

TEST(ModelConfigTest, Qwen35ExplicitLayerTypesAndTextOnlyType) {
  json j = Qwen35()["text_config"];
  j["num_hidden_layers"] = 3;
  j["layer_types"] = {"full_attention", "linear_attention", "attention"};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "qwen3_5_text");
  EXPECT_THAT(c->layer_types,
              ElementsAre(LayerType::kFullAttention, LayerType::kLinearAttention, LayerType::kFullAttention));

  j.erase("rope_parameters");  // Qwen3.5's partial rotary default is 0.25, theta 10000
  c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_DOUBLE_EQ(c->partial_rotary_factor, 0.25);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
}

TEST(ModelConfigTest, MergesGenerationConfigEos) {
  auto c = Parse(Qwen3V4(), R"({"bos_token_id": 151643, "eos_token_id": [151645, 151643], "do_sample": true})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(151645, 151643));
  json no_ids = Qwen3V4();
  no_ids.erase("eos_token_id");
  no_ids.erase("bos_token_id");
  c = Parse(no_ids, R"({"bos_token_id": 1, "eos_token_id": 2})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(2));
}

TEST(ModelConfigTest, ParsesFp8Quantization) {
  json j = Qwen3V4();
  j["quantization_config"] = {{"quant_method", "fp8"},
                              {"fmt", "e4m3"},
                              {"activation_scheme", "dynamic"},
                              {"weight_block_size", {128, 128}},
                              {"modules_to_not_convert", {"lm_head"}}};
  auto c = Parse(j);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->quantization.has_value());
  EXPECT_THAT(c->quantization->weight_block_size, ElementsAre(128, 128));
  EXPECT_THAT(c->quantization->modules_to_not_convert, ElementsAre("lm_head"));

  j["quantization_config"]["quant_method"] = "awq";
  EXPECT_EQ(Parse(j).status().code(), absl::StatusCode::kUnimplemented);
  j["quantization_config"]["quant_method"] = "fp8";
  j["quantization_config"]["weight_block_size"] = {128};
  EXPECT_EQ(Parse(j).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelConfigTest, UnknownModelTypeIsUnimplemented) {
  json j = Qwen3V4();
  j["model_type"] = "llama";
  auto c = Parse(j);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(c.status().message(), "model_type llama is not supported; supported: qwen3, qwen3_5, qwen3_5_text");
}

struct BadConfigCase {
  const char* label;
  const char* patch;  // JSON merge patch applied to Qwen3V5()
  absl::StatusCode code;
  const char* message;
};

// gtest would otherwise print the struct's bytes, padding included.
void PrintTo(const BadConfigCase& c, std::ostream* os) { *os << c.label; }

class ModelConfigErrorTest : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(ModelConfigErrorTest, NamesTheField) {
  const BadConfigCase& p = GetParam();
  json j = Qwen3V5();
  j.merge_patch(json::parse(p.patch));
  auto c = Parse(j);
  EXPECT_EQ(c.status().code(), p.code) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr(p.message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ModelConfigErrorTest,
    ::testing::Values(
        BadConfigCase{"MissingHidden", R"({"hidden_size": null})", absl::StatusCode::kInvalidArgument,
                      "missing required field 'hidden_size'"},
        BadConfigCase{"ZeroVocab", R"({"vocab_size": 0})", absl::StatusCode::kInvalidArgument,
                      "'vocab_size' must be positive, got 0"},
        BadConfigCase{"NegativeLayers", R"({"num_hidden_layers": -2})", absl::StatusCode::kInvalidArgument,
                      "'num_hidden_layers' must be positive"},
        BadConfigCase{"StringSize", R"({"intermediate_size": "160"})", absl::StatusCode::kInvalidArgument,
                      "'intermediate_size' must be an integer"},
        BadConfigCase{"FloatHeads", R"({"num_attention_heads": 6.5})", absl::StatusCode::kInvalidArgument,
                      "'num_attention_heads' must be an integer"},
        BadConfigCase{"HugeSize", R"({"hidden_size": 4294967296})", absl::StatusCode::kInvalidArgument,
                      "'hidden_size' must be at most"},
        BadConfigCase{"HeadsNotDivisible", R"({"num_key_value_heads": 4})", absl::StatusCode::kInvalidArgument,
                      "'num_attention_heads' (6) must be a multiple of num_key_value_heads (4)"},
        BadConfigCase{"OddHeadDim", R"({"head_dim": 31})", absl::StatusCode::kInvalidArgument,
                      "'head_dim' must be even"},
        BadConfigCase{"BadEps", R"({"rms_norm_eps": 0})", absl::StatusCode::kInvalidArgument, "'rms_norm_eps'"},
        BadConfigCase{"BadTheta", R"({"rope_parameters": {"rope_theta": -1}})", absl::StatusCode::kInvalidArgument,
                      "'rope_theta' must be positive"},
        BadConfigCase{"BadPartial", R"({"rope_parameters": {"partial_rotary_factor": 1.5}})",
                      absl::StatusCode::kInvalidArgument, "'partial_rotary_factor' must be in (0, 1]"},
        BadConfigCase{"RopeNotObject", R"({"rope_parameters": 3})", absl::StatusCode::kInvalidArgument,
                      "'rope_parameters' must be an object"},
        BadConfigCase{"LayerTypesLength", R"({"layer_types": ["full_attention"]})", absl::StatusCode::kInvalidArgument,
                      "'layer_types' has 1 entries but num_hidden_layers is 3"},
        BadConfigCase{"LinearInDense", R"({"layer_types": ["full_attention", "linear_attention", "full_attention"]})",
                      absl::StatusCode::kInvalidArgument, "'layer_types' has unsupported entry \"linear_attention\""},
        BadConfigCase{"EosNotInt", R"({"eos_token_id": "x"})", absl::StatusCode::kInvalidArgument,
                      "'eos_token_id' must be a token id or a list of token ids"},
        BadConfigCase{"EosOutOfVocab", R"({"eos_token_id": 5000})", absl::StatusCode::kInvalidArgument,
                      "eos_token_id 5000 is outside the vocabulary"},
        BadConfigCase{"TieNotBool", R"({"tie_word_embeddings": "yes"})", absl::StatusCode::kInvalidArgument,
                      "'tie_word_embeddings' must be true or false"},
        BadConfigCase{"SlidingWindow", R"({"use_sliding_window": true})", absl::StatusCode::kUnimplemented,
                      "use_sliding_window"},
        BadConfigCase{"Gelu", R"({"hidden_act": "gelu"})", absl::StatusCode::kUnimplemented, "hidden_act 'gelu'"},
        BadConfigCase{"NoModelType", R"({"model_type": null})", absl::StatusCode::kInvalidArgument,
                      "'model_type' is required"}),
    [](const ::testing::TestParamInfo<BadConfigCase>& info) { return info.param.label; });

TEST(ModelConfigTest, Qwen35ErrorsNameTheNestedField) {
  json j = Qwen35();
  j["text_config"]["linear_num_value_heads"] = 20;
  auto c = Parse(j);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("'text_config.linear_num_value_heads' (20) must be a multiple"));

  j = Qwen35();
  j["text_config"]["layer_types"] = {"linear_attention", "sliding_attention", "full_attention", "full_attention",
                                     "full_attention",   "full_attention",    "full_attention", "full_attention"};
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("'text_config.layer_types' has unsupported entry"));

  j = Qwen35();
  j.erase("text_config");
  EXPECT_THAT(Parse(j).status().message(), HasSubstr("'text_config' must be an object"));
}

TEST(ModelConfigTest, RejectsNonObjects) {
  EXPECT_EQ(ParseModelConfig("{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseModelConfig("[]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseModelConfig(Qwen3V4().dump(), "nope").status().message(), HasSubstr("generation_config.json"));
}

TEST(ModelConfigTest, LoadsFromFolder) {
  ScopedTempDir dir;
  EXPECT_EQ(LoadModelConfig(dir.path().string()).status().code(), absl::StatusCode::kNotFound);
  WriteFile(dir.File("config.json"), Qwen3V5().dump());
  WriteFile(dir.File("generation_config.json"), R"({"eos_token_id": 2})");
  auto c = LoadModelConfig(dir.path().string());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->eos_token_ids, ElementsAre(0, 1, 2));

  WriteFile(dir.File("config.json"), R"({"model_type": "qwen3"})");
  auto bad = LoadModelConfig(dir.path().string());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr(dir.File("config.json")));
}

}  // namespace
}  // namespace octet
