// Synthetic models (--model synthetic:<preset>): real shapes from the presets, random weights that keep the forward
// pass finite, FP8 where the recipe says, deterministic per seed.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/model/synthetic_weights.h"
#include "worker/runtime/cpu_backend.h"

namespace octet {
namespace {

TEST(SyntheticModelTest, PresetsHaveTheRealShapes) {
  auto json = SyntheticConfigJson("qwen3.5-27b");
  ASSERT_TRUE(json.ok()) << json.status();
  auto c = ParseModelConfig(*json);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, ModelFamily::kQwen35);
  EXPECT_EQ(c->hidden_size, 5120);
  EXPECT_EQ(c->num_hidden_layers, 64);
  EXPECT_EQ(c->num_full_attention_layers(), 16);
  EXPECT_EQ(c->intermediate_size, 17408);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->rotary_dim(), 64);
  EXPECT_EQ(c->vocab_size, 248320);
  EXPECT_TRUE(c->attn_output_gate);
  auto q3 = ParseModelConfig(*SyntheticConfigJson("qwen3-32b"));
  ASSERT_TRUE(q3.ok()) << q3.status();
  EXPECT_EQ(q3->family, ModelFamily::kQwen3);
  EXPECT_EQ(q3->num_attention_heads, 64);
  EXPECT_EQ(q3->num_key_value_heads, 8);
}

TEST(SyntheticModelTest, UnknownPresetNamesThePresets) {
  CpuBackend backend;
  auto loaded = LoadModel("synthetic:qwen9", backend);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("qwen3.5-27b"), std::string::npos) << loaded.status();
}

std::vector<float> LastLogits(Model& model, Backend& backend, int32_t tokens) {
  std::vector<int32_t> ids(tokens);
  for (int32_t i = 0; i < tokens; ++i) ids[i] = (i * 7919) % model.vocab_size();
  const int32_t block_size = 16, blocks = (tokens + block_size - 1) / block_size;
  KvCache cache = AllocateKvCache(backend, model.kv_cache_spec(), blocks, block_size, 1, DType::kF8E4M3);
  std::vector<int32_t> table(blocks);
  for (int32_t i = 0; i < blocks; ++i) table[i] = i;
  Tensor logits = model.Forward(SequenceBatch(backend, ids, 0, table, block_size, 0), cache);
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  backend.Download(logits, out.data());
  return std::vector<float>(out.end() - model.vocab_size(), out.end());
}

TEST(SyntheticModelTest, TinyModelRunsFiniteAndDeterministic) {
  CpuBackend backend;
  auto a = LoadModel("synthetic:qwen3.5-tiny", backend, LoadOptions{.recipe = Fp8Recipe::kOfficial});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_GT(a->weight_stats.fp8_layers, 0);
  EXPECT_GT(a->weight_stats.other_layers, 0);  // in_proj_a/b and the LM head stay 16-bit under the official recipe
  const std::vector<float> la = LastLogits(*a->model, backend, 40);
  double sum_sq = 0;
  for (float v : la) {
    ASSERT_TRUE(std::isfinite(v));
    sum_sq += static_cast<double>(v) * v;
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(la.size()));
  EXPECT_GT(rms, 0.05);  // O(1) logits: neither vanished nor blown up
  EXPECT_LT(rms, 100.0);
  auto b = LoadModel("synthetic:qwen3.5-tiny", backend, LoadOptions{.recipe = Fp8Recipe::kOfficial});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(LastLogits(*b->model, backend, 40), la);
  auto c =
      LoadModel("synthetic:qwen3.5-tiny", backend, LoadOptions{.recipe = Fp8Recipe::kOfficial, .synthetic_seed = 1});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(LastLogits(*c->model, backend, 40), la);
}

}  // namespace
}  // namespace octet
