#include "worker/engine/engine.h"
#include "tests/worker/tokenizer/fixtures.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model.h"
#include "worker/runtime/cpu_backend.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {
namespace {

using std::chrono::milliseconds;

constexpr int32_t kVocab = 64;  // ids 0..63 of the fixture tokenizer are single printable ASCII characters

// The small Qwen-style test tokenizer, loaded once (tests/worker/tokenizer/fixtures.h).
const Tokenizer& FixtureTokenizer() { return testing::LoadFixtureTokenizer("tokenizer.json"); }

// The fake model's next token: a hash of the whole context, so that a wrong or stale KV cache (which is where the
// fake model reads the context from) changes the output.
int32_t NextToken(std::span<const int32_t> context) {
  uint32_t h = 2166136261u;
  for (int32_t t : context) {
    h ^= static_cast<uint32_t>(t) + 1;
    h *= 16777619u;
  }
  return static_cast<int32_t>((h ^ (h >> 16)) % kVocab);
}

// What greedy decoding of the fake model produces after `prompt`, ignoring stop conditions.
std::vector<int32_t> ExpectedTokens(std::vector<int32_t> context, int32_t n) {
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

EngineConfig Config(int32_t num_kv_blocks, int32_t block_size = 16, int32_t max_model_len = 4096) {
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

SamplingParams Greedy(int32_t max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.seed = 1;
  return p;
}

std::vector<int32_t> Prompt(int32_t n, int32_t salt = 0) {
  std::vector<int32_t> p(n);
  for (int32_t i = 0; i < n; ++i) p[i] = (i * 5 + salt * 11 + 1) % kVocab;
  return p;
}

// First index i in `tokens` such that tokens[i] does not occur before it and i >= min_index.
int FirstFreshIndex(const std::vector<int32_t>& tokens, int min_index) {
  for (int i = min_index; i < static_cast<int>(tokens.size()); ++i) {
    if (std::find(tokens.begin(), tokens.begin() + i, tokens[i]) == tokens.begin() + i) return i;
  }
  return -1;
}

TEST(EngineTest, RunsToMaxTokensWithLengthAndUsage) {
  Harness h(Config(64));
  const std::vector<int32_t> prompt = Prompt(5);
  auto sink = h.Submit(prompt, Greedy(10));
  ASSERT_TRUE(sink->WaitFinished());

  const std::vector<int32_t> expected = ExpectedTokens(prompt, 10);
  EXPECT_EQ(sink->tokens(), expected);
  EXPECT_EQ(sink->text(), FixtureTokenizer().Decode(expected));
  const GenerationOutput last = sink->last();
  EXPECT_EQ(last.finish_reason, FinishReason::kLength);
  EXPECT_TRUE(last.status.ok());
  EXPECT_EQ(last.prompt_tokens, 5);
  EXPECT_EQ(last.completion_tokens, 10);
  EXPECT_EQ(sink->num_final(), 1);
  EXPECT_EQ(sink->num_outputs(), 10u);  // one output per generated token, the last one final
  EXPECT_EQ(h.model().errors(), 0);
  EXPECT_TRUE(h.WaitAllBlocksFree());
}

TEST(EngineTest, FullQueueRefusesAtOnceAndKeepsWhatItAccepted) {
  EngineConfig config = Config(64);
  config.max_queued_requests = 2;
  Harness h(config, milliseconds(0), /*start=*/false);  // nothing leaves the queue until the engine starts
  auto first = h.Submit(Prompt(5), Greedy(3));
  auto second = h.Submit(Prompt(6), Greedy(3));
  auto third = h.Submit(Prompt(7), Greedy(3));
  ASSERT_TRUE(third->WaitFinished());  // answered without the engine running
  EXPECT_EQ(third->last().finish_reason, FinishReason::kError);
  EXPECT_EQ(third->last().status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third->last().status.message().find("--max-queued-requests 2"), std::string::npos);
  EXPECT_TRUE(third->tokens().empty());
  h.engine().Start();
  ASSERT_TRUE(first->WaitFinished());
  ASSERT_TRUE(second->WaitFinished());
  EXPECT_EQ(first->tokens(), ExpectedTokens(Prompt(5), 3));
  EXPECT_EQ(second->tokens(), ExpectedTokens(Prompt(6), 3));
}

TEST(EngineTest, StopsAtTheContextLength) {
  Harness h(Config(64, 16, /*max_model_len=*/12));
  const std::vector<int32_t> prompt = Prompt(5);
  auto sink = h.Submit(prompt, Greedy(100));
  ASSERT_TRUE(sink->WaitFinished());
  EXPECT_EQ(sink->tokens(), ExpectedTokens(prompt, 7));
  EXPECT_EQ(sink->last().finish_reason, FinishReason::kLength);
  EXPECT_EQ(sink->last().completion_tokens, 7);
}

TEST(EngineTest, EosTokenStopsWithStop) {
  const std::vector<int32_t> prompt = Prompt(7, 3);
  const std::vector<int32_t> free_run = ExpectedTokens(prompt, 30);
  const int eos_at = FirstFreshIndex(free_run, 3);
  ASSERT_GE(eos_at, 0);
  EngineConfig config = Config(64);
  config.eos_token_ids = {free_run[eos_at]};
  Harness h(config);

  auto sink = h.Submit(prompt, Greedy(30));
  ASSERT_TRUE(sink->WaitFinished());
  const std::vector<int32_t> expected(free_run.begin(), free_run.begin() + eos_at + 1);  // eos included
  EXPECT_EQ(sink->tokens(), expected);
  // The end-of-sequence token's own text is not part of the completion.
  EXPECT_EQ(sink->text(), FixtureTokenizer().Decode(std::span<const int32_t>(expected.data(), eos_at)));
  EXPECT_EQ(sink->last().finish_reason, FinishReason::kStop);
  EXPECT_EQ(sink->last().completion_tokens, eos_at + 1);
  EXPECT_EQ(sink->last().prompt_tokens, 7);

  // ignore_eos runs past it to max_tokens.
  SamplingParams ignore = Greedy(30);
  ignore.ignore_eos = true;
  auto sink2 = h.Submit(prompt, ignore);
  ASSERT_TRUE(sink2->WaitFinished());
  EXPECT_EQ(sink2->tokens(), free_run);
  EXPECT_EQ(sink2->last().finish_reason, FinishReason::kLength);
  EXPECT_TRUE(h.WaitAllBlocksFree());
}

TEST(EngineTest, StopTokenIdsStop) {
  const std::vector<int32_t> prompt = Prompt(4, 9);
  const std::vector<int32_t> free_run = ExpectedTokens(prompt, 40);
  const int stop_at = FirstFreshIndex(free_run, 5);
  ASSERT_GE(stop_at, 0);
  Harness h(Config(64));
  SamplingParams params = Greedy(40);
  params.stop_token_ids = {kVocab + 5, free_run[stop_at]};  // an id the model never produces, then a real one
  auto sink = h.Submit(prompt, params);
  ASSERT_TRUE(sink->WaitFinished());
  EXPECT_EQ(sink->tokens(), std::vector<int32_t>(free_run.begin(), free_run.begin() + stop_at + 1));
  EXPECT_EQ(sink->last().finish_reason, FinishReason::kStop);
  EXPECT_EQ(sink->last().completion_tokens, stop_at + 1);
  // stop_token_ids apply even with ignore_eos.
  params.ignore_eos = true;
  auto sink2 = h.Submit(prompt, params);
  ASSERT_TRUE(sink2->WaitFinished());
  EXPECT_EQ(sink2->last().finish_reason, FinishReason::kStop);
  EXPECT_EQ(sink2->last().completion_tokens, stop_at + 1);
}

TEST(EngineTest, StopStringTruncatesTheText) {
  const std::vector<int32_t> prompt = Prompt(6, 2);
  const std::vector<int32_t> free_run = ExpectedTokens(prompt, 30);
  const std::string full = FixtureTokenizer().Decode(free_run);
  // A stop string made of the texts of generated tokens 4, 5 and 6 (single characters).
  const std::string stop = full.substr(4, 3);
  const size_t at = full.find(stop);
  ASSERT_LE(at, 4u);
  Harness h(Config(64));
  SamplingParams params = Greedy(30);
  params.stop = {stop};
  auto sink = h.Submit(prompt, params);
  ASSERT_TRUE(sink->WaitFinished());
  EXPECT_EQ(sink->last().finish_reason, FinishReason::kStop);
  EXPECT_EQ(sink->text(), full.substr(0, at));
  EXPECT_EQ(sink->tokens(), std::vector<int32_t>(free_run.begin(), free_run.begin() + at + 3));
}

TEST(EngineTest, SixteenConcurrentRequestsAllCompleteCorrectly) {
  EngineConfig config = Config(128, 8);
  config.scheduler = {.max_num_seqs = 6, .max_num_batched_tokens = 24};  // queueing and chunked prefill
  Harness h(config);
  constexpr int kRequests = 16;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int32_t> max_tokens;
  for (int i = 0; i < kRequests; ++i) {
    prompts.push_back(Prompt(1 + (i * 7) % 40, i));
    max_tokens.push_back(3 + (i * 5) % 17);
  }
  std::vector<std::shared_ptr<CollectingSink>> sinks(kRequests);
  // Submit from several threads at once.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kRequests; i += 4) {
        sinks[i] = h.Submit(prompts[i], Greedy(max_tokens[i]), nullptr, "req-" + std::to_string(i));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(sinks[i]->WaitFinished()) << "request " << i;
    const std::vector<int32_t> expected = ExpectedTokens(prompts[i], max_tokens[i]);
    EXPECT_EQ(sinks[i]->tokens(), expected) << "request " << i;
    EXPECT_EQ(sinks[i]->text(), FixtureTokenizer().Decode(expected)) << "request " << i;
    EXPECT_EQ(sinks[i]->last().finish_reason, FinishReason::kLength) << "request " << i;
    EXPECT_EQ(sinks[i]->last().prompt_tokens, static_cast<int32_t>(prompts[i].size())) << "request " << i;
    EXPECT_EQ(sinks[i]->last().completion_tokens, max_tokens[i]) << "request " << i;
    EXPECT_EQ(sinks[i]->num_final(), 1) << "request " << i;
  }
  EXPECT_EQ(h.model().errors(), 0);
  EXPECT_LE(h.model().max_batch_tokens(), 24);
  EXPECT_TRUE(h.WaitAllBlocksFree());
  EXPECT_EQ(h.engine().stats().num_running.load(), 0);
  EXPECT_EQ(h.engine().stats().num_waiting.load(), 0);
}

TEST(EngineTest, CancelMidGenerationDeliversCancelledAndFreesBlocks) {
  Harness h(Config(2048, 16, 30000), milliseconds(2));
  const std::vector<int32_t> prompt = Prompt(20);
  int64_t id = 0;
  auto sink = h.Submit(prompt, Greedy(20000), &id);
  ASSERT_TRUE(sink->WaitOutputs(3));
  EXPECT_LT(h.engine().stats().num_free_blocks.load(), h.engine().num_kv_blocks());
  h.engine().Cancel(id);
  ASSERT_TRUE(sink->WaitFinished(milliseconds(5000)));
  const GenerationOutput last = sink->last();
  EXPECT_EQ(last.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(sink->num_final(), 1);
  const std::vector<int32_t> got = sink->tokens();
  EXPECT_GE(got.size(), 3u);
  EXPECT_LT(got.size(), 20000u);
  EXPECT_EQ(got, ExpectedTokens(prompt, static_cast<int32_t>(got.size())));
  EXPECT_EQ(last.completion_tokens, static_cast<int32_t>(got.size()));
  EXPECT_TRUE(h.WaitAllBlocksFree(milliseconds(2000)));
  EXPECT_EQ(h.engine().stats().num_running.load(), 0);

  // Nothing more arrives after the final output, and cancelling again is harmless.
  h.engine().Cancel(id);
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(sink->outputs_after_final(), 0);
  EXPECT_EQ(sink->num_final(), 1);

  // The engine keeps serving.
  auto next = h.Submit(prompt, Greedy(4));
  ASSERT_TRUE(next->WaitFinished());
  EXPECT_EQ(next->tokens(), ExpectedTokens(prompt, 4));
}

TEST(EngineTest, CancelOfAWaitingRequest) {
  EngineConfig config = Config(2048, 16, 30000);
  config.scheduler.max_num_seqs = 1;
  Harness h(config, milliseconds(1));
  auto running = h.Submit(Prompt(3), Greedy(20000));
  ASSERT_TRUE(running->WaitOutputs(1));
  int64_t waiting_id = 0;
  auto waiting = h.Submit(Prompt(3, 1), Greedy(5), &waiting_id);
  h.engine().Cancel(waiting_id);
  ASSERT_TRUE(waiting->WaitFinished(milliseconds(5000)));
  EXPECT_EQ(waiting->last().finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(waiting->tokens().empty());
  EXPECT_EQ(waiting->last().completion_tokens, 0);
  EXPECT_EQ(running->num_final(), 0);
}

// A KV cache too small for the requests at once: sequences get preempted and recomputed, and every request still
// produces exactly what it produces without memory pressure.
TEST(EngineTest, PreemptionUnderATinyKvCacheGivesTheSameTokens) {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back(Prompt(18 + 3 * i, i + 5));
  const int32_t kMaxTokens = 20;

  auto run = [&](int32_t num_blocks, int64_t* preemptions) {
    EngineConfig config = Config(num_blocks, 4);
    config.scheduler = {.max_num_seqs = 4, .max_num_batched_tokens = 16};
    Harness h(config, milliseconds(0), /*start=*/false);
    std::vector<std::shared_ptr<CollectingSink>> sinks;
    // All queued before the engine starts, so that they compete for the cache from the first step.
    for (const std::vector<int32_t>& p : prompts) sinks.push_back(h.Submit(p, Greedy(kMaxTokens)));
    h.engine().Start();
    std::vector<std::vector<int32_t>> tokens;
    for (auto& s : sinks) {
      EXPECT_TRUE(s->WaitFinished());
      EXPECT_EQ(s->last().finish_reason, FinishReason::kLength);
      EXPECT_EQ(s->last().completion_tokens, kMaxTokens);
      tokens.push_back(s->tokens());
    }
    EXPECT_EQ(h.model().errors(), 0) << num_blocks << " blocks";
    EXPECT_TRUE(h.WaitAllBlocksFree());
    *preemptions = h.engine().stats().num_preemptions.load();
    return tokens;
  };

  int64_t relaxed_preemptions = 0, tight_preemptions = 0;
  const auto relaxed = run(256, &relaxed_preemptions);
  // The longest request needs (27 + 20) / 4 -> 12 blocks: it fits alone, but not with the others.
  const auto tight = run(14, &tight_preemptions);
  EXPECT_EQ(relaxed_preemptions, 0);
  EXPECT_GT(tight_preemptions, 0);
  ASSERT_EQ(tight.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(relaxed[i], ExpectedTokens(prompts[i], kMaxTokens)) << "request " << i;
    EXPECT_EQ(tight[i], relaxed[i]) << "request " << i;
  }
}

TEST(EngineTest, StopWithRequestsInFlightCancelsEach) {
  EngineConfig config = Config(2048, 16, 30000);
  config.scheduler.max_num_seqs = 2;  // two run, the rest wait
  auto h = std::make_unique<Harness>(config, milliseconds(2));
  std::vector<std::shared_ptr<CollectingSink>> sinks;
  for (int i = 0; i < 5; ++i) sinks.push_back(h->Submit(Prompt(4 + i, i), Greedy(20000)));
  ASSERT_TRUE(sinks[0]->WaitOutputs(2));
  ASSERT_TRUE(sinks[1]->WaitOutputs(2));
  h->engine().Stop();
  for (size_t i = 0; i < sinks.size(); ++i) {
    EXPECT_EQ(sinks[i]->num_final(), 1) << "request " << i;
    EXPECT_EQ(sinks[i]->last().finish_reason, FinishReason::kCancelled) << "request " << i;
  }
  EXPECT_GE(sinks[0]->tokens().size(), 2u);
  EXPECT_TRUE(sinks[4]->tokens().empty());  // never ran
  const int64_t forwards = h->model().num_forwards();
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(h->model().num_forwards(), forwards);  // the loop is gone
  h.reset();                                       // the destructor's second Stop is harmless
  for (size_t i = 0; i < sinks.size(); ++i) EXPECT_EQ(sinks[i]->num_final(), 1) << "request " << i;
}

// A request submitted after Stop() (reachable while the worker shuts down) still gets exactly one final output,
// kCancelled, instead of waiting forever in an inbox nobody drains.
TEST(EngineTest, SubmitAfterStopIsCancelledNotLost) {
  Harness h(Config(64));
  h.engine().Stop();
  auto sink = h.Submit(Prompt(3), Greedy(3));
  EXPECT_TRUE(sink->WaitFinished(milliseconds(1000))) << "no output at all for a request submitted after Stop()";
  EXPECT_EQ(sink->last().finish_reason, FinishReason::kCancelled);
}

TEST(EngineTest, LogprobsAreReportedWhenAsked) {
  Harness h(Config(64));
  SamplingParams params = Greedy(5);
  params.logprobs = 3;
  const std::vector<int32_t> prompt = Prompt(5);
  auto sink = h.Submit(prompt, params);
  ASSERT_TRUE(sink->WaitFinished());
  EXPECT_EQ(sink->tokens(), ExpectedTokens(prompt, 5));
  EXPECT_EQ(sink->last().logprobs.size(), 1u);
  ASSERT_FALSE(sink->last().logprobs.empty());
  EXPECT_EQ(sink->last().logprobs[0].token_id, sink->last().token_ids[0]);
  EXPECT_EQ(sink->last().logprobs[0].top.size(), 3u);
}

}  // namespace
}  // namespace octet
