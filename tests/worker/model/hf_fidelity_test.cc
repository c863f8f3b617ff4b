// Fidelity against Hugging Face transformers: the CPU engine's logits and greedy continuations must match the
// references recorded by tests/fixtures/make_hf_reference.py (float32 on CPU) for every fixture model.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/model/safetensors.h"
#include "worker/runtime/cpu_backend.h"
#include "worker/server/worker_runtime.h"

namespace octet {
namespace {

namespace fs = std::filesystem;

const char kFixtureRoot[] = "tests/fixtures/hf";

std::vector<std::string> FixtureModels() {
  std::vector<std::string> names;
  if (!fs::exists(kFixtureRoot)) return names;
  for (const auto& entry : fs::directory_iterator(kFixtureRoot)) {
    if (fs::exists(entry.path() / "reference.json")) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

double RelativeL2(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / den);
}

// Runs `ids` through the model as one sequence in chunks of `chunk` tokens over a paged cache with small blocks,
// returning the logits of every position [T, vocab].
std::vector<float> AllLogits(Model& model, Backend& backend, const std::vector<int32_t>& ids, int32_t chunk) {
  const int32_t block_size = 4;
  const int32_t t_total = static_cast<int32_t>(ids.size());
  const int32_t num_blocks = (t_total + block_size - 1) / block_size + 1;
  // Hybrid models also need a recurrent-state slot: use slot 1 of 2, so slot indexing is exercised.
  const bool hybrid = model.kv_cache_spec().num_recurrent_layers > 0;
  KvCache cache = AllocateKvCache(backend, model.kv_cache_spec(), num_blocks, block_size, hybrid ? 2 : 0);
  // Blocks deliberately out of order, as a real block table would be after some churn.
  std::vector<int32_t> table(num_blocks);
  for (int32_t i = 0; i < num_blocks; ++i) table[i] = num_blocks - 1 - i;
  const size_t vocab = static_cast<size_t>(model.vocab_size());
  std::vector<float> out(static_cast<size_t>(t_total) * vocab);
  for (int32_t begin = 0; begin < t_total; begin += chunk) {
    const int32_t end = std::min(t_total, begin + chunk);
    const std::vector<int32_t> input(ids.begin() + begin, ids.begin() + end);
    const ForwardBatch fb = SequenceBatch(backend, input, begin, table, block_size, hybrid ? 1 : -1);
    Tensor logits = model.Forward(fb, cache);
    backend.Download(logits, out.data() + static_cast<size_t>(begin) * vocab);
  }
  return out;
}

// The positions whose logits the fixture kept for prompt i: reference.json's logit_positions["i"], else all.
std::vector<int32_t> LogitPositions(const nlohmann::json& ref, size_t i, size_t num_tokens) {
  const std::string key = std::to_string(i);
  if (ref.contains("logit_positions") && ref["logit_positions"].contains(key)) {
    return ref["logit_positions"][key].get<std::vector<int32_t>>();
  }
  std::vector<int32_t> all(num_tokens);
  for (size_t t = 0; t < num_tokens; ++t) all[t] = static_cast<int32_t>(t);
  return all;
}

class HfFidelityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFidelityTest, LogitsMatchTransformers) {
  const fs::path dir = fs::path(kFixtureRoot) / GetParam();
  const nlohmann::json ref = ReadJson(dir / "reference.json");
  auto ref_file = SafetensorsFile::Open((dir / "reference.safetensors").string());
  ASSERT_TRUE(ref_file.ok()) << ref_file.status();
  CpuBackend backend;
  auto loaded = LoadModel(dir.string(), backend);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Model& model = *loaded->model;

  const auto& prompts = ref["prompts"];
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<int32_t> ids = prompts[i].get<std::vector<int32_t>>();
    const TensorView* want = (*ref_file)->Find(absl::StrCat("logits.", i));
    ASSERT_NE(want, nullptr);
    const std::vector<int32_t> positions = LogitPositions(ref, i, ids.size());
    ASSERT_EQ(want->shape[0], static_cast<int64_t>(positions.size()));
    const int64_t vocab = want->shape[1];
    ASSERT_LE(vocab, model.vocab_size());
    auto want_f = ReadAsFloat32(*want);
    ASSERT_TRUE(want_f.ok());
    // Whole prompt at once, and in chunks of 5 (prefill chunks over a paged cache must give the same logits).
    for (int32_t chunk : {static_cast<int32_t>(ids.size()), 5}) {
      const std::vector<float> got = AllLogits(model, backend, ids, chunk);
      double worst = 0;
      for (size_t r = 0; r < positions.size(); ++r) {
        const size_t t = static_cast<size_t>(positions[r]);
        const double err = RelativeL2(got.data() + t * model.vocab_size(), want_f->data() + r * vocab, vocab);
        worst = std::max(worst, err);
      }
      EXPECT_LT(worst, 1e-4) << GetParam() << " prompt " << i << " (" << ids.size() << " tokens), chunk " << chunk;
      std::printf("[fidelity] %s prompt %zu (%zu tokens) chunk %d: max relative L2 error %.3g\n", GetParam().c_str(), i,
                  ids.size(), chunk, worst);
    }
  }
}

TEST_P(HfFidelityTest, GreedyContinuationMatchesTransformers) {
  const fs::path dir = fs::path(kFixtureRoot) / GetParam();
  const nlohmann::json ref = ReadJson(dir / "reference.json");
  WorkerOptions options;
  options.model_dir = dir.string();
  options.served_model_name = GetParam();
  options.block_size = 4;
  options.fp8_recipe = Fp8Recipe::kNone;  // transformers computes in float32: compare the exact path
  options.kv_cache_dtype = DType::kF32;
  auto runtime = WorkerRuntime::Create(options);
  ASSERT_TRUE(runtime.ok()) << runtime.status();

  class Collect final : public OutputSink {
   public:
    void Deliver(GenerationOutput o) override {
      std::lock_guard<std::mutex> lock(mu);
      tokens.insert(tokens.end(), o.token_ids.begin(), o.token_ids.end());
      if (o.finish_reason != FinishReason::kNone) {
        done = true;
        cv.notify_all();
      }
    }
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int32_t> tokens;
    bool done = false;
  };

  // All prompts at once: the engine batches them; each must still match its own HF continuation.
  const auto& prompts = ref["prompts"];
  std::vector<std::shared_ptr<Collect>> sinks;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto sink = std::make_shared<Collect>();
    EngineRequest r;
    r.request_id = absl::StrCat("p", i);
    r.prompt_token_ids = prompts[i].get<std::vector<int32_t>>();
    r.sampling.temperature = 0;
    r.sampling.max_tokens = static_cast<int32_t>(ref["greedy"][i].size());
    r.sampling.ignore_eos = true;
    r.sink = sink;
    (*runtime)->engine().Submit(std::move(r));
    sinks.push_back(sink);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::unique_lock<std::mutex> lock(sinks[i]->mu);
    ASSERT_TRUE(sinks[i]->cv.wait_for(lock, std::chrono::seconds(60), [&] { return sinks[i]->done; }));
    EXPECT_EQ(sinks[i]->tokens, ref["greedy"][i].get<std::vector<int32_t>>()) << GetParam() << " prompt " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfFidelityTest, ::testing::ValuesIn(FixtureModels()), [](const auto& info) {
  std::string name = info.param;  // gtest names: letters, digits, underscores
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
});

TEST(HfFidelityFixtures, Present) {
  EXPECT_GE(FixtureModels().size(), 3u) << "run tests/fixtures/make_hf_reference.py";
}

}  // namespace
}  // namespace octet
