// FP8 weights end to end on the CPU reference path: checkpoints in the official Qwen FP8 layout (written by
// tests/fixtures/make_fp8_checkpoint.py with an independent quantizer, numpy + ml_dtypes) load as they are, match
// the same 16-bit model quantized at load, and stay close to the 16-bit logits; recipes pick the right layers.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/runtime/cpu_backend.h"

namespace octet {
namespace {

struct Pair {
  const char* fp8_dir;
  const char* source_dir;
};

const Pair kPairs[] = {
    {"tests/fixtures/fp8/qwen3_5-tiny-mqa-fp8", "tests/fixtures/hf/qwen3_5-tiny-mqa-bf16"},
    {"tests/fixtures/fp8/qwen3-tiny-mqa-fp8", "tests/fixtures/hf/qwen3-tiny-mqa-bf16"},
};

// A fixed 40-token prompt's logits [40, vocab], one prefill.
std::vector<float> PromptLogits(const std::string& dir, Fp8Recipe recipe, DType kv_dtype,
                                WeightStats* stats = nullptr) {
  CpuBackend backend;
  auto loaded = LoadModel(dir, backend, LoadOptions{.recipe = recipe});
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return {};
  if (stats) *stats = loaded->weight_stats;
  Model& model = *loaded->model;
  const int32_t t = 40, block_size = 16, num_blocks = 3;
  std::vector<int32_t> ids(t);
  for (int32_t p = 0; p < t; ++p) ids[p] = (p * 37 + 11) % 1900;
  const std::vector<int32_t> table = {2, 0, 1};  // blocks out of order, as after some churn
  KvCache cache = AllocateKvCache(backend, model.kv_cache_spec(), num_blocks, block_size, 1, kv_dtype);
  const ForwardBatch fb = SequenceBatch(backend, ids, /*start=*/0, table, block_size, /*state_slot=*/0);
  Tensor logits = model.Forward(fb, cache);
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  backend.Download(logits, out.data());
  return out;
}

double RelativeL2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / den);
}

class Fp8CheckpointTest : public ::testing::TestWithParam<Pair> {};

TEST_P(Fp8CheckpointTest, OfficialLayoutEqualsQuantizingTheSourceAtLoad) {
  const std::vector<float> as_is = PromptLogits(GetParam().fp8_dir, Fp8Recipe::kOfficial, DType::kF32);
  const std::vector<float> at_load = PromptLogits(GetParam().source_dir, Fp8Recipe::kOfficial, DType::kF32);
  ASSERT_EQ(as_is.size(), at_load.size());
  // Same quantization rule (amax / 448, round to nearest even) on both sides: the same weights, the same logits.
  EXPECT_EQ(as_is, at_load);
}

TEST_P(Fp8CheckpointTest, Fp8KvCacheStaysCloseToFp32) {
  const std::vector<float> f32 = PromptLogits(GetParam().source_dir, Fp8Recipe::kNone, DType::kF32);
  const std::vector<float> bf16 = PromptLogits(GetParam().source_dir, Fp8Recipe::kNone, DType::kBF16);
  const std::vector<float> fp8 = PromptLogits(GetParam().source_dir, Fp8Recipe::kNone, DType::kF8E4M3);
  std::printf("[kv] %s: bf16 KV vs fp32 %.5f, fp8 KV vs fp32 %.5f (relative L2)\n", GetParam().source_dir,
              RelativeL2(bf16, f32), RelativeL2(fp8, f32));
  EXPECT_LT(RelativeL2(bf16, f32), 0.01);
  EXPECT_LT(RelativeL2(fp8, f32), 0.05);
  EXPECT_GT(RelativeL2(fp8, f32), RelativeL2(bf16, f32));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Fp8CheckpointTest, ::testing::ValuesIn(kPairs),
                         [](const auto& info) { return std::string(info.index == 0 ? "qwen3_5" : "qwen3"); });

// Closeness is measured on the trained bundled model: the tiny random fixtures amplify any perturbation (3% of
// weight noise moves their logits by tens of percent), a trained model does not.
TEST(Fp8RecipeTest, TrainedModelInFp8StaysCloseToSixteenBit) {
  const std::string dir = "models/qwen3_5-code-small";
  const std::vector<float> bf16 = PromptLogits(dir, Fp8Recipe::kNone, DType::kF32);
  const size_t vocab = bf16.size() / 40;
  for (Fp8Recipe recipe : {Fp8Recipe::kMlpOnly, Fp8Recipe::kOfficial, Fp8Recipe::kAll}) {
    const std::vector<float> fp8 = PromptLogits(dir, recipe, DType::kF32);
    int agree = 0;
    for (size_t t = 0; t < 40; ++t) {
      const float* a = bf16.data() + t * vocab;
      const float* b = fp8.data() + t * vocab;
      agree += std::max_element(a, a + vocab) - a == std::max_element(b, b + vocab) - b;
    }
    const double err = RelativeL2(fp8, bf16);
    std::printf("[fp8] bundled model, recipe %s: logits relative L2 %.4f, top-1 agreement %d/40\n",
                std::string(Fp8RecipeName(recipe)).c_str(), err, agree);
    EXPECT_GT(err, 0.0);  // it really ran in FP8
    EXPECT_LT(err, 0.1);
    EXPECT_GE(agree, 34);
  }
}

TEST(Fp8RecipeTest, RecipesPutTheRightLayersInFp8) {
  // qwen3_5-tiny-mqa-bf16: 6 layers (4 Gated DeltaNet, 2 attention), untied.
  // Linear layers per GDN layer: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a, out_proj; per attention layer
  // q, k, v, o; per layer gate_up (stacked) and down; plus lm_head.
  const std::string dir = "tests/fixtures/hf/qwen3_5-tiny-mqa-bf16";
  const int gdn = 4, attn = 2, layers = 6;
  const int total = gdn * 5 + attn * 4 + layers * 2 + 1;
  struct Case {
    Fp8Recipe recipe;
    int fp8_layers;
  } cases[] = {
      {Fp8Recipe::kNone, 0},
      {Fp8Recipe::kMlpOnly, layers * 2},
      {Fp8Recipe::kOfficial, gdn * 3 + attn * 4 + layers * 2},
      {Fp8Recipe::kAll, total},
  };
  for (const Case& c : cases) {
    WeightStats stats;
    PromptLogits(dir, c.recipe, DType::kF32, &stats);
    EXPECT_EQ(stats.fp8_layers, c.fp8_layers) << Fp8RecipeName(c.recipe);
    EXPECT_EQ(stats.fp8_layers + stats.other_layers, total) << Fp8RecipeName(c.recipe);
  }
}

}  // namespace
}  // namespace octet
