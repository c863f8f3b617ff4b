// The engine tests' fixture: a fake model that reads its context back from the KV cache (so a wrong block table,
// a stale block or a wrongly shared prefix changes its output), a sink that collects outputs, and a harness that
// runs model, runner and engine on the CPU backend.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "tests/worker/tokenizer/fixtures.h"
#include "worker/engine/engine.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model.h"
#include "worker/runtime/cpu_backend.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet::engine_testing {

using std::chrono::milliseconds;

inline constexpr int32_t kVocab = 64;  // ids 0..63 of the fixture tokenizer are single printable ASCII characters

// The small Qwen-style test tokenizer, loaded once (tests/worker/tokenizer/fixtures.h).
inline const Tokenizer& FixtureTokenizer() { return testing::LoadFixtureTokenizer("tokenizer.json"); }

// The fake model's next token: a hash of the whole context, so that a wrong or stale KV cache (which is where the
// fake model reads the context from) changes the output.
inline int32_t NextToken(std::span<const int32_t> context) {
  uint32_t h = 2166136261u;
  for (int32_t t : context) {
    h ^= static_cast<uint32_t>(t) + 1;
    h *= 16777619u;
  }
  return static_cast<int32_t>((h ^ (h >> 16)) % kVocab);
}

// What greedy decoding of the fake model produces after `prompt`, ignoring stop conditions.
inline std::vector<int32_t> ExpectedTokens(std::vector<int32_t> context, int32_t n) {
  std::vector<int32_t> out;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t next = NextToken(context);
    out.push_back(next);
    context.push_back(next);
  }
  return out;
}

// A Model over a 1-layer, 1-head, head_dim 1 KV cache: Forward writes each new token's id into K and its
// position + 1 into V at its slot, then reads every requested row's whole context back through the block table
// and returns one-hot-ish logits at NextToken(context). Inconsistent metadata or cache contents are counted as
// errors instead of crashing the engine thread.
class FakeModel : public Model {
 public:
  explicit FakeModel(milliseconds delay = milliseconds(0)) : delay_(delay) {}

  KvCacheSpec kv_cache_spec() const override { return {.num_layers = 1, .num_kv_heads = 1, .head_dim = 1}; }
  int32_t vocab_size() const override { return kVocab; }

  Tensor Forward(const ForwardBatch& batch, KvCache& cache) override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    num_forwards_.fetch_add(1);
    const AttentionBatch& a = batch.attention;
    const int64_t num_tokens = batch.input_ids.numel();
    const int32_t* ids = batch.input_ids.data_as<int32_t>();
    const int32_t* positions = batch.positions.data_as<int32_t>();
    const int32_t* slots = a.slot_mapping.data_as<int32_t>();
    const int32_t* query_start = a.query_start.data_as<int32_t>();
    const int32_t* context_lens = a.context_lens.data_as<int32_t>();
    const int32_t* tables = a.block_tables.data_as<int32_t>();
    const int64_t max_blocks = a.block_tables.dim(1);
    const int32_t* rows = batch.logit_rows.data_as<int32_t>();
    const int64_t num_rows = batch.logit_rows.numel();
    float* k = cache.layers[0].k.data_as<float>();
    float* v = cache.layers[0].v.data_as<float>();
    const int64_t num_slots = static_cast<int64_t>(cache.num_blocks) * cache.block_size;
    max_batch_tokens_.store(std::max<int64_t>(max_batch_tokens_.load(), num_tokens));

    for (int64_t t = 0; t < num_tokens; ++t) {
      if (slots[t] < 0 || slots[t] >= num_slots || ids[t] < 0 || ids[t] >= kVocab) {
        errors_.fetch_add(1);
        continue;
      }
      k[slots[t]] = static_cast<float>(ids[t]);
      v[slots[t]] = static_cast<float>(positions[t] + 1);
    }

    Tensor logits = HostTensor(DType::kF32, {num_rows, kVocab});
    float* out = logits.data_as<float>();
    std::fill(out, out + num_rows * kVocab, 0.0f);
    for (int64_t r = 0; r < num_rows; ++r) {
      int64_t b = 0;
      while (b < a.num_seqs && query_start[b + 1] - 1 != rows[r]) ++b;
      if (b == a.num_seqs) {
        errors_.fetch_add(1);
        continue;
      }
      std::vector<int32_t> context;
      for (int32_t p = 0; p < context_lens[b]; ++p) {
        const int64_t slot = static_cast<int64_t>(tables[b * max_blocks + p / cache.block_size]) * cache.block_size +
                             p % cache.block_size;
        if (slot < 0 || slot >= num_slots || v[slot] != static_cast<float>(p + 1)) {
          errors_.fetch_add(1);  // the cache does not hold position p where the block table says
          break;
        }
        context.push_back(static_cast<int32_t>(k[slot]));
      }
      out[r * kVocab + NextToken(context)] = 10.0f;
    }
    return logits;
  }

  int64_t errors() const { return errors_.load(); }
  int64_t num_forwards() const { return num_forwards_.load(); }
  int64_t max_batch_tokens() const { return max_batch_tokens_.load(); }

 private:
  milliseconds delay_;
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> num_forwards_{0};
  std::atomic<int64_t> max_batch_tokens_{0};
};

// Collects a request's outputs; the test thread waits for the final one.
class CollectingSink : public OutputSink {
 public:
  void Deliver(GenerationOutput output) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (output.finish_reason != FinishReason::kNone) ++num_final_;
    if (num_final_ > 0 && output.finish_reason == FinishReason::kNone) ++outputs_after_final_;
    outputs_.push_back(std::move(output));
    cv_.notify_all();
  }

  bool WaitFinished(milliseconds timeout = milliseconds(20000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return num_final_ > 0; });
  }
  bool WaitOutputs(size_t n, milliseconds timeout = milliseconds(20000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return outputs_.size() >= n; });
  }

  std::vector<int32_t> tokens() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int32_t> all;
    for (const GenerationOutput& o : outputs_) all.insert(all.end(), o.token_ids.begin(), o.token_ids.end());
    return all;
  }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string all;
    for (const GenerationOutput& o : outputs_) all += o.text;
    return all;
  }
  GenerationOutput last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outputs_.empty() ? GenerationOutput{} : outputs_.back();
  }
  size_t num_outputs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outputs_.size();
  }
  int num_final() const {
    std::lock_guard<std::mutex> lock(mu_);
    return num_final_;
  }
  int outputs_after_final() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outputs_after_final_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<GenerationOutput> outputs_;
  int num_final_ = 0;
  int outputs_after_final_ = 0;
};

inline EngineConfig Config(int32_t num_kv_blocks, int32_t block_size = 16, int32_t max_model_len = 4096) {
  EngineConfig config;
  config.scheduler = {.max_num_seqs = 8, .max_num_batched_tokens = 64};
  config.num_kv_blocks = num_kv_blocks;
  config.block_size = block_size;
  config.max_model_len = max_model_len;
  return config;
}

// Model, CPU backend, KV cache, runner and a started engine. Destroyed engine first.
class Harness {
 public:
  explicit Harness(const EngineConfig& config, milliseconds model_delay = milliseconds(0), bool start = true)
      : model_(model_delay) {
    runner_ = std::make_unique<ModelRunner>(
        model_, backend_, AllocateKvCache(backend_, model_.kv_cache_spec(), config.num_kv_blocks, config.block_size));
    engine_ = std::make_unique<Engine>(config, *runner_, FixtureTokenizer());
    if (start) engine_->Start();
  }

  Engine& engine() { return *engine_; }
  FakeModel& model() { return model_; }

  // Submits a greedy request; returns its sink and sets *id.
  std::shared_ptr<CollectingSink> Submit(std::vector<int32_t> prompt, SamplingParams params, int64_t* id = nullptr,
                                         std::string request_id = "req") {
    auto sink = std::make_shared<CollectingSink>();
    const int64_t seq_id = engine_->Submit(
        {.request_id = std::move(request_id), .prompt_token_ids = std::move(prompt), .sampling = params, .sink = sink});
    if (id != nullptr) *id = seq_id;
    return sink;
  }

  // Polls until the engine reports all KV blocks free.
  bool WaitAllBlocksFree(milliseconds timeout = milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (engine_->stats().num_free_blocks.load() == engine_->num_kv_blocks()) return true;
      std::this_thread::sleep_for(milliseconds(1));
    }
    return engine_->stats().num_free_blocks.load() == engine_->num_kv_blocks();
  }

 private:
  FakeModel model_;
  CpuBackend backend_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<Engine> engine_;
};

inline SamplingParams Greedy(int32_t max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.seed = 1;
  return p;
}

inline std::vector<int32_t> Prompt(int32_t n, int32_t salt = 0) {
  std::vector<int32_t> p(n);
  for (int32_t i = 0; i < n; ++i) p[i] = (i * 5 + salt * 11 + 1) % kVocab;
  return p;
}

// First index i in `tokens` such that tokens[i] does not occur before it and i >= min_index.
inline int FirstFreshIndex(const std::vector<int32_t>& tokens, int min_index) {
  for (int i = min_index; i < static_cast<int>(tokens.size()); ++i) {
    if (std::find(tokens.begin(), tokens.begin() + i, tokens[i]) == tokens.begin() + i) return i;
  }
  return -1;
}

}  // namespace octet::engine_testing
