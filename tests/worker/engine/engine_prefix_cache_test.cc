// The engine with prefix caching: requests that share a prompt prefix compute only what is new, and produce exactly
// the tokens they produce without the cache — under memory pressure and preemption too.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/worker/engine/engine_harness.h"

namespace octet {
namespace {

using namespace engine_testing;  // NOLINT: the fixture is this file's vocabulary

// Adds up the prompt tokens each step computed and keeps the latest snapshot.
class CountingObserver : public EngineObserver {
 public:
  void OnStep(int32_t batch_size, int32_t prefill_tokens, int32_t decode_tokens, double seconds) override {
    prefill_tokens_ += prefill_tokens;
  }
  void OnSnapshot(const EngineSnapshot& snapshot) override { snapshot_ = snapshot; }
  int64_t prefill_tokens() const { return prefill_tokens_; }
  const EngineSnapshot& snapshot() const { return snapshot_; }

 private:
  std::atomic<int64_t> prefill_tokens_{0};
  EngineSnapshot snapshot_;  // read after the request finished and the engine went idle
};

EngineConfig CachingConfig(int32_t num_blocks, bool caching) {
  EngineConfig config = Config(num_blocks, /*block_size=*/4);
  config.enable_prefix_caching = caching;
  return config;
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(EnginePrefixCacheTest, ARepeatedPromptComputesOnlyItsLastBlockAndGivesTheSameTokens) {
  CountingObserver observer;
  Harness h(CachingConfig(64, true), milliseconds(0), /*start=*/false);
  h.engine().set_observer(&observer);
  h.engine().Start();
  const std::vector<int32_t> prompt = Prompt(40, 3);
  auto first = h.Submit(prompt, Greedy(8));
  ASSERT_TRUE(first->WaitFinished());
  ASSERT_TRUE(h.WaitAllBlocksFree());
  EXPECT_EQ(observer.prefill_tokens(), 40);

  auto second = h.Submit(prompt, Greedy(8));
  ASSERT_TRUE(second->WaitFinished());
  ASSERT_TRUE(h.WaitAllBlocksFree());
  EXPECT_EQ(observer.prefill_tokens(), 40 + 4);  // 36 of 40 found: the last block is computed again
  EXPECT_EQ(first->tokens(), ExpectedTokens(prompt, 8));
  EXPECT_EQ(second->tokens(), first->tokens());
  EXPECT_EQ(observer.snapshot().prefix_query_tokens, 80);
  EXPECT_EQ(observer.snapshot().prefix_hit_tokens, 36);
  EXPECT_GT(observer.snapshot().num_cached_free_blocks, 0);
  EXPECT_EQ(h.model().errors(), 0);
}

TEST(EnginePrefixCacheTest, ASharedSystemPromptIsReusedAcrossRequestsWithIdenticalOutputs) {
  const std::vector<int32_t> system = Prompt(32, 9);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 10; ++i) prompts.push_back(Concat(system, Prompt(5 + i, 20 + i)));

  auto run = [&](bool caching, CountingObserver* observer) {
    Harness h(CachingConfig(64, caching), milliseconds(0), /*start=*/false);
    h.engine().set_observer(observer);
    h.engine().Start();
    std::vector<std::vector<int32_t>> tokens;
    for (const auto& p : prompts) {  // one after another, as turns of separate conversations arrive
      auto sink = h.Submit(p, Greedy(6));
      EXPECT_TRUE(sink->WaitFinished());
      tokens.push_back(sink->tokens());
    }
    EXPECT_TRUE(h.WaitAllBlocksFree());
    EXPECT_EQ(h.model().errors(), 0);
    return tokens;
  };
  CountingObserver cold, warm;
  const auto without = run(false, &cold);
  const auto with = run(true, &warm);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(without[i], ExpectedTokens(prompts[i], 6)) << "request " << i;
    EXPECT_EQ(with[i], without[i]) << "request " << i;
  }
  // After the first request, each finds the 32-token system prompt (8 blocks).
  EXPECT_EQ(warm.snapshot().prefix_hit_tokens, 9 * 32);
  EXPECT_EQ(warm.prefill_tokens(), cold.prefill_tokens() - 9 * 32);
  EXPECT_EQ(cold.snapshot().prefix_query_tokens, 0);  // off: nothing looked up
}

TEST(EnginePrefixCacheTest, PreemptionWithPrefixCachingGivesTheSameTokens) {
  // Requests with a common prefix compete for a pool that holds only one of them at its longest.
  const std::vector<int32_t> shared = Prompt(12, 4);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) prompts.push_back(Concat(shared, Prompt(6 + 3 * i, i + 5)));
  const int32_t kMaxTokens = 20;
  auto run = [&](int32_t num_blocks, bool caching, int64_t* preemptions) {
    EngineConfig config = CachingConfig(num_blocks, caching);
    config.scheduler = {.max_num_seqs = 4, .max_num_batched_tokens = 16};
    Harness h(config, milliseconds(0), /*start=*/false);
    std::vector<std::shared_ptr<CollectingSink>> sinks;
    for (const auto& p : prompts) sinks.push_back(h.Submit(p, Greedy(kMaxTokens)));
    h.engine().Start();
    std::vector<std::vector<int32_t>> tokens;
    for (auto& s : sinks) {
      EXPECT_TRUE(s->WaitFinished());
      EXPECT_EQ(s->last().completion_tokens, kMaxTokens);
      tokens.push_back(s->tokens());
    }
    EXPECT_EQ(h.model().errors(), 0) << num_blocks << " blocks";
    EXPECT_TRUE(h.WaitAllBlocksFree());
    *preemptions = h.engine().stats().num_preemptions.load();
    return tokens;
  };
  int64_t relaxed_preemptions = 0, tight_preemptions = 0;
  const auto relaxed = run(256, false, &relaxed_preemptions);
  // The longest needs (12 + 15 + 20) / 4 -> 12 blocks.
  const auto tight = run(14, true, &tight_preemptions);
  EXPECT_EQ(relaxed_preemptions, 0);
  EXPECT_GT(tight_preemptions, 0);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(relaxed[i], ExpectedTokens(prompts[i], kMaxTokens)) << "request " << i;
    EXPECT_EQ(tight[i], relaxed[i]) << "request " << i;
  }
}

TEST(EnginePrefixCacheTest, ACancelledRequestFreesItsBlocksAndLeavesItsPrefixCached) {
  CountingObserver observer;
  Harness h(CachingConfig(64, true), milliseconds(5), /*start=*/false);
  h.engine().set_observer(&observer);
  h.engine().Start();
  int64_t id = 0;
  auto sink = h.Submit(Prompt(24, 1), Greedy(1000), &id);
  ASSERT_TRUE(sink->WaitOutputs(3));
  h.engine().Cancel(id);
  ASSERT_TRUE(sink->WaitFinished());
  EXPECT_EQ(sink->last().finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(h.WaitAllBlocksFree());
  auto again = h.Submit(Prompt(24, 1), Greedy(2));
  ASSERT_TRUE(again->WaitFinished());
  EXPECT_EQ(again->tokens(), ExpectedTokens(Prompt(24, 1), 2));
  EXPECT_EQ(observer.snapshot().prefix_hit_tokens, 20);
}

}  // namespace
}  // namespace octet
