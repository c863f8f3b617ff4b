// Checks the checkpoints written by tests/fixtures/make_hf_reference.py (transformers' own save_pretrained output)
// through octet's config and safetensors readers: every Qwen3 tensor is where and what config.json implies, and
// the reference logits match the recorded prompts. Skips when the fixtures have not been generated.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

void CheckModel(const fs::path& dir) {
  SCOPED_TRACE(dir.string());
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir.string());
  ASSERT_TRUE(config.ok()) << config.status();
  const ModelConfig& c = *config;
  EXPECT_EQ(c.family, ModelFamily::kQwen3);
  ASSERT_TRUE(c.dtype.has_value());
  const DType dtype = *c.dtype;

  absl::StatusOr<std::unique_ptr<Checkpoint>> opened = Checkpoint::Open(dir.string());
  ASSERT_TRUE(opened.ok()) << opened.status();
  const Checkpoint& ckpt = **opened;

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
  absl::StatusOr<std::vector<float>> norm = ReadAsFloat32(*ckpt.Find("model.layers.0.input_layernorm.weight"));
  ASSERT_TRUE(norm.ok());
  EXPECT_NE(std::count(norm->begin(), norm->end(), 1.0f), static_cast<long>(norm->size()));

  std::ifstream in(dir / "reference.json");
  const nlohmann::json ref = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(ref.is_object());
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
    EXPECT_EQ(t->shape, (std::vector<int64_t>{static_cast<int64_t>(prompts[i].size()), c.vocab_size}));
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
