// Checks the checkpoints written by tests/fixtures/make_hf_reference.py (transformers' own save_pretrained output)
// through octet's config and safetensors readers: every Qwen3 / Qwen3.5 tensor is where and what config.json
// implies (for the Qwen3.5 multimodal layout, under model.language_model. and beside vision / MTP tensors), and the
// reference logits match the recorded prompts. Skips when the fixtures have not been generated.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/model/checkpoint.h"
#include "worker/model/model_config.h"
#include "worker/model/safetensors.h"

namespace octet {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

// OCTET_HF_FIXTURES overrides the folder, e.g. to check a fresh output of the script before committing it.
fs::path FixtureRoot() {
  const char* env = std::getenv("OCTET_HF_FIXTURES");
  return env != nullptr ? fs::path(env) : fs::path("tests/fixtures/hf");
}

std::vector<fs::path> ModelDirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(FixtureRoot(), ec)) {
    if (fs::exists(e.path() / "config.json")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

void ExpectTensor(const Checkpoint& ckpt, const std::string& name, std::vector<int64_t> shape, DType dtype) {
  const TensorView* t = ckpt.Find(name);
  ASSERT_NE(t, nullptr) << ckpt.model_dir() << ": no " << name;
  EXPECT_EQ(t->shape, shape) << name;
  EXPECT_EQ(t->dtype, dtype) << name;
}

// Every element of the tensor equals `value` (e.g. a norm left at its initial value).
bool AllEqual(const Checkpoint& ckpt, const std::string& name, float value) {
  const TensorView* t = ckpt.Find(name);
  if (t == nullptr) return false;
  absl::StatusOr<std::vector<float>> v = ReadAsFloat32(*t);
  return v.ok() && std::count(v->begin(), v->end(), value) == static_cast<long>(v->size());
}

// Qwen3: every layer is full attention, with q/k RMSNorm (weights multiply: randomised around 1).
void CheckQwen3Tensors(const Checkpoint& ckpt, const ModelConfig& c, DType dtype) {
  const int64_t h = c.hidden_size, d = c.head_dim, q = c.num_attention_heads, kv = c.num_key_value_heads;
  ExpectTensor(ckpt, "model.embed_tokens.weight", {c.vocab_size, h}, dtype);
  ExpectTensor(ckpt, "model.norm.weight", {h}, dtype);
  size_t expected = 2 + 11 * static_cast<size_t>(c.num_hidden_layers);
  if (c.tie_word_embeddings) {
    EXPECT_EQ(ckpt.Find("lm_head.weight"), nullptr);  // save_pretrained drops the tied copy
  } else {
    ExpectTensor(ckpt, "lm_head.weight", {c.vocab_size, h}, dtype);
    ++expected;
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat("model.layers.", i, ".");
    ExpectTensor(ckpt, p + "input_layernorm.weight", {h}, dtype);
    ExpectTensor(ckpt, p + "post_attention_layernorm.weight", {h}, dtype);
    ExpectTensor(ckpt, p + "self_attn.q_proj.weight", {q * d, h}, dtype);
    ExpectTensor(ckpt, p + "self_attn.k_proj.weight", {kv * d, h}, dtype);
    ExpectTensor(ckpt, p + "self_attn.v_proj.weight", {kv * d, h}, dtype);
    ExpectTensor(ckpt, p + "self_attn.o_proj.weight", {h, q * d}, dtype);
    ExpectTensor(ckpt, p + "self_attn.q_norm.weight", {d}, dtype);
    ExpectTensor(ckpt, p + "self_attn.k_norm.weight", {d}, dtype);
    ExpectTensor(ckpt, p + "mlp.gate_proj.weight", {c.intermediate_size, h}, dtype);
    ExpectTensor(ckpt, p + "mlp.up_proj.weight", {c.intermediate_size, h}, dtype);
    ExpectTensor(ckpt, p + "mlp.down_proj.weight", {h, c.intermediate_size}, dtype);
  }
  EXPECT_EQ(ckpt.num_tensors(), expected);

  // The script randomises norm weights around 1; all-ones would mean the fixture does not exercise them.
  EXPECT_FALSE(AllEqual(ckpt, "model.layers.0.input_layernorm.weight", 1.0f));
}

// Qwen3.5: Gated DeltaNet (linear_attn) and gated full attention (self_attn, q_proj twice as wide) layers as
// layer_types says. The language model sits under `model.` (Qwen3_5ForCausalLM) or `model.language_model.`
// (Qwen3_5ForConditionalGeneration, beside model.visual.* and mtp.* tensors a text-only loader skips).
void CheckQwen35Tensors(const Checkpoint& ckpt, const ModelConfig& c, DType dtype) {
  const bool wrapped = c.model_type == "qwen3_5";
  const std::string m = wrapped ? "model.language_model." : "model.";
  const int64_t h = c.hidden_size, d = c.head_dim, q = c.num_attention_heads, kv = c.num_key_value_heads;
  const int64_t inter = c.intermediate_size;
  const int64_t hv = c.linear_num_value_heads, dk = c.linear_key_head_dim, dv = c.linear_value_head_dim;
  const int64_t key_dim = c.linear_num_key_heads * dk, value_dim = hv * dv;
  const int64_t conv = 2 * key_dim + value_dim;
  EXPECT_TRUE(c.attn_output_gate);
  ASSERT_EQ(c.layer_types.size(), static_cast<size_t>(c.num_hidden_layers));
  // A fixture should exercise both layer kinds.
  EXPECT_GT(c.num_full_attention_layers(), 0);
  EXPECT_LT(c.num_full_attention_layers(), c.num_hidden_layers);

  ExpectTensor(ckpt, m + "embed_tokens.weight", {c.vocab_size, h}, dtype);
  ExpectTensor(ckpt, m + "norm.weight", {h}, dtype);
  size_t expected = 2;
  if (c.tie_word_embeddings) {
    EXPECT_EQ(ckpt.Find("lm_head.weight"), nullptr);  // save_pretrained drops the tied copy
  } else {
    ExpectTensor(ckpt, "lm_head.weight", {c.vocab_size, h}, dtype);
    ++expected;
  }
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = absl::StrCat(m, "layers.", i, ".");
    ExpectTensor(ckpt, p + "input_layernorm.weight", {h}, dtype);
    ExpectTensor(ckpt, p + "post_attention_layernorm.weight", {h}, dtype);
    ExpectTensor(ckpt, p + "mlp.gate_proj.weight", {inter, h}, dtype);
    ExpectTensor(ckpt, p + "mlp.up_proj.weight", {inter, h}, dtype);
    ExpectTensor(ckpt, p + "mlp.down_proj.weight", {h, inter}, dtype);
    if (c.layer_types[i] == LayerType::kLinearAttention) {
      const std::string a = p + "linear_attn.";
      ExpectTensor(ckpt, a + "in_proj_qkv.weight", {conv, h}, dtype);
      ExpectTensor(ckpt, a + "in_proj_z.weight", {value_dim, h}, dtype);
      ExpectTensor(ckpt, a + "in_proj_b.weight", {hv, h}, dtype);
      ExpectTensor(ckpt, a + "in_proj_a.weight", {hv, h}, dtype);
      ExpectTensor(ckpt, a + "conv1d.weight", {conv, 1, c.linear_conv_kernel_dim}, dtype);
      ExpectTensor(ckpt, a + "dt_bias", {hv}, dtype);
      ExpectTensor(ckpt, a + "A_log", {hv}, dtype);
      ExpectTensor(ckpt, a + "norm.weight", {dv}, dtype);
      ExpectTensor(ckpt, a + "out_proj.weight", {h, value_dim}, dtype);
      EXPECT_EQ(ckpt.Find(p + "self_attn.q_proj.weight"), nullptr);
      expected += 14;
      // The gated norm multiplies by its weight (randomised around 1); A_log must not be left at zero.
      EXPECT_FALSE(AllEqual(ckpt, a + "norm.weight", 1.0f)) << a;
      EXPECT_FALSE(AllEqual(ckpt, a + "A_log", 0.0f)) << a;
    } else {
      const std::string a = p + "self_attn.";
      ExpectTensor(ckpt, a + "q_proj.weight", {2 * q * d, h}, dtype);  // query and output gate per head
      ExpectTensor(ckpt, a + "k_proj.weight", {kv * d, h}, dtype);
      ExpectTensor(ckpt, a + "v_proj.weight", {kv * d, h}, dtype);
      ExpectTensor(ckpt, a + "o_proj.weight", {h, q * d}, dtype);
      ExpectTensor(ckpt, a + "q_norm.weight", {d}, dtype);
      ExpectTensor(ckpt, a + "k_norm.weight", {d}, dtype);
      EXPECT_EQ(ckpt.Find(p + "linear_attn.in_proj_qkv.weight"), nullptr);
      expected += 11;
      // Qwen3_5RMSNorm multiplies by (1 + w): the script randomises w around 0, all-zero would not exercise it.
      EXPECT_FALSE(AllEqual(ckpt, a + "q_norm.weight", 0.0f)) << a;
    }
  }
  EXPECT_FALSE(AllEqual(ckpt, m + "layers.0.input_layernorm.weight", 0.0f));

  size_t extra = 0;
  for (const std::string& name : ckpt.Names()) {
    if (absl::StartsWith(name, "model.visual.") || absl::StartsWith(name, "mtp.")) ++extra;
  }
  if (wrapped) {
    EXPECT_NE(ckpt.Find("model.visual.patch_embed.proj.weight"), nullptr);
    EXPECT_NE(ckpt.Find("mtp.fc.weight"), nullptr);
  } else {
    EXPECT_EQ(extra, 0u);
  }
  EXPECT_EQ(ckpt.num_tensors(), expected + extra);
}

// A wrapper folder holds another fixture's language model renamed model.X -> model.language_model.X: every tensor
// must be byte-identical to its source.
void CheckWrapperMatchesSource(const Checkpoint& wrapper, const fs::path& source_dir) {
  SCOPED_TRACE(source_dir.string());
  absl::StatusOr<std::unique_ptr<Checkpoint>> opened = Checkpoint::Open(source_dir.string());
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Checkpoint& source = **opened;
  for (const std::string& name : source.Names()) {
    const std::string renamed =
        absl::StartsWith(name, "model.") ? absl::StrCat("model.language_model.", name.substr(6)) : name;
    const TensorView* want = source.Find(name);
    const TensorView* got = wrapper.Find(renamed);
    ASSERT_NE(got, nullptr) << renamed;
    EXPECT_EQ(got->dtype, want->dtype) << renamed;
    EXPECT_EQ(got->shape, want->shape) << renamed;
    ASSERT_EQ(got->nbytes, want->nbytes) << renamed;
    EXPECT_EQ(std::memcmp(got->data, want->data, want->nbytes), 0) << renamed;
  }
}

void CheckModel(const fs::path& dir) {
  SCOPED_TRACE(dir.string());
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir.string());
  ASSERT_TRUE(config.ok()) << config.status();
  const ModelConfig& c = *config;
  ASSERT_TRUE(c.dtype.has_value());
  const DType dtype = *c.dtype;

  absl::StatusOr<std::unique_ptr<Checkpoint>> opened = Checkpoint::Open(dir.string());
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Checkpoint& ckpt = **opened;

  std::ifstream in(dir / "reference.json");
  const nlohmann::json ref = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(ref.is_object());
  if (c.family == ModelFamily::kQwen35) {
    EXPECT_EQ(ref.value("family", ""), "qwen3_5");
    CheckQwen35Tensors(ckpt, c, dtype);
    if (ref.contains("layer_types")) {  // as transformers resolved them (config.json may hold only the interval)
      std::vector<std::string> want = ref.at("layer_types").get<std::vector<std::string>>();
      ASSERT_EQ(want.size(), c.layer_types.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(want[i], c.layer_types[i] == LayerType::kLinearAttention ? "linear_attention" : "full_attention")
            << "layer " << i;
      }
    }
    if (c.model_type == "qwen3_5") {
      ASSERT_TRUE(ref.contains("reference_of")) << "a wrapper folder names the fixture it wraps";
      CheckWrapperMatchesSource(ckpt, dir.parent_path() / ref.at("reference_of").get<std::string>());
    }
  } else {
    EXPECT_EQ(c.family, ModelFamily::kQwen3);
    CheckQwen3Tensors(ckpt, c, dtype);
  }

  EXPECT_EQ(ref.value("vocab_size", 0), c.vocab_size);
  EXPECT_THAT(c.eos_token_ids, ElementsAre(ref.value("eos_token_id", -1)));
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> logits =
      SafetensorsFile::Open((dir / "reference.safetensors").string());
  ASSERT_TRUE(logits.ok()) << logits.status();
  const nlohmann::json& prompts = ref.at("prompts");
  const nlohmann::json& greedy = ref.at("greedy");
  ASSERT_EQ(prompts.size(), greedy.size());
  EXPECT_EQ((*logits)->tensors().size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const TensorView* t = (*logits)->Find(absl::StrCat("logits.", i));
    ASSERT_NE(t, nullptr) << i;
    EXPECT_EQ(t->dtype, DType::kF32);
    // Long prompts keep the logits of some positions only (reference.json's logit_positions), short ones all.
    int64_t rows = static_cast<int64_t>(prompts[i].size());
    const std::string key = std::to_string(i);
    if (ref.contains("logit_positions") && ref["logit_positions"].contains(key)) {
      const std::vector<int64_t> kept = ref["logit_positions"][key].get<std::vector<int64_t>>();
      ASSERT_FALSE(kept.empty());
      EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
      EXPECT_GE(kept.front(), 0);
      EXPECT_EQ(kept.back(), rows - 1);  // the last position, whose argmax is greedy step 0, is always kept
      rows = static_cast<int64_t>(kept.size());
    }
    EXPECT_EQ(t->shape, (std::vector<int64_t>{rows, c.vocab_size}));
    EXPECT_EQ(greedy[i].size(), 32u);
    for (const nlohmann::json& id : greedy[i]) EXPECT_LT(id.get<int64_t>(), c.vocab_size);
  }
}

TEST(HfFixtureTest, EveryModelFolderLoads) {
  const std::vector<fs::path> dirs = ModelDirs();
  if (dirs.empty()) {
    GTEST_SKIP() << "no model folders under " << FixtureRoot()
                 << "; make them with tests/fixtures/make_hf_reference.py";
  }
  for (const fs::path& dir : dirs) CheckModel(dir);
}

}  // namespace
}  // namespace octet
