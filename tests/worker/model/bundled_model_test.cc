// The bundled trained Qwen3.5 model (models/qwen3_5-code-small): the CPU engine must reproduce the held-out
// perplexity that transformers measured (float32 over the BF16 weights) within 0.5%, and its greedy completions.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/runtime/cpu_backend.h"

namespace octet {
namespace {

const std::string kModelDir = "models/qwen3_5-code-small";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Logits [T, vocab] for one sequence run from scratch in a single prefill.
std::vector<float> WindowLogits(Model& model, Backend& backend, const std::vector<int32_t>& ids) {
  const int32_t t = static_cast<int32_t>(ids.size());
  const int32_t block_size = 16;
  const int32_t num_blocks = (t + block_size - 1) / block_size;
  KvCache cache = AllocateKvCache(backend, model.kv_cache_spec(), num_blocks, block_size, /*num_state_slots=*/1);
  std::vector<int32_t> table(num_blocks);
  for (int32_t i = 0; i < num_blocks; ++i) table[i] = i;
  const ForwardBatch fb = SequenceBatch(backend, ids, /*start=*/0, table, block_size, /*state_slot=*/0);
  Tensor logits = model.Forward(fb, cache);
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  backend.Download(logits, out.data());
  return out;
}

TEST(BundledModelTest, HeldOutPerplexityMatchesTransformers) {
  const nlohmann::json eval = ReadJson(kModelDir + "/eval.json");
  const nlohmann::json windows = ReadJson(kModelDir + "/eval_windows.json");
  CpuBackend backend;
  auto loaded = LoadModel(kModelDir, backend);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Model& model = *loaded->model;
  const size_t vocab = static_cast<size_t>(model.vocab_size());

  const auto& want_per_window = eval["ci_windows"]["mean_nll_per_window"];
  ASSERT_EQ(windows.size(), want_per_window.size());
  double total_nll = 0;
  int64_t total_tokens = 0;
  for (size_t w = 0; w < windows.size(); ++w) {
    const std::vector<int32_t> ids = windows[w].get<std::vector<int32_t>>();
    const std::vector<float> logits = WindowLogits(model, backend, ids);
    double nll = 0;
    for (size_t p = 0; p + 1 < ids.size(); ++p) {  // position p predicts token p + 1
      const float* row = logits.data() + p * vocab;
      double max = row[0];
      for (size_t v = 1; v < vocab; ++v) max = std::max<double>(max, row[v]);
      double sum = 0;
      for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
      nll += std::log(sum) + max - row[ids[p + 1]];
    }
    const double mean = nll / static_cast<double>(ids.size() - 1);
    EXPECT_NEAR(mean, want_per_window[w].get<double>(), 2e-3) << "window " << w;
    total_nll += nll;
    total_tokens += static_cast<int64_t>(ids.size() - 1);
  }
  const double ours = std::exp(total_nll / static_cast<double>(total_tokens));
  const double theirs = eval["ci_windows"]["perplexity"].get<double>();
  std::printf("[perplexity] octet %.4f, transformers %.4f over %lld tokens: relative difference %.2e\n", ours, theirs,
              static_cast<long long>(total_tokens), std::abs(ours - theirs) / theirs);
  EXPECT_LT(std::abs(ours - theirs) / theirs, 0.005);
}

}  // namespace
}  // namespace octet
