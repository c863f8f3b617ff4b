#include "worker/engine/engine.h"

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
#include "tests/worker/engine/engine_harness.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model.h"
#include "worker/runtime/cpu_backend.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {
namespace {

using namespace engine_testing;  // NOLINT: the fixture is this file's vocabulary
using std::chrono::milliseconds;

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

TEST(EngineTest, DeadlinesEndRunningAndWaitingRequestsAndFreeTheirBlocks) {
  EngineConfig config = Config(64);
  config.scheduler.max_num_seqs = 1;  // the second request waits behind the first
  Harness h(config, milliseconds(5), /*start=*/false);
  const auto now = std::chrono::steady_clock::now();
  auto running = std::make_shared<CollectingSink>();
  auto waiting = std::make_shared<CollectingSink>();
  auto patient = std::make_shared<CollectingSink>();
  h.engine().Submit({.request_id = "running",
                     .prompt_token_ids = Prompt(5),
                     .sampling = Greedy(100000),
                     .sink = running,
                     .deadline = now + milliseconds(300)});
  h.engine().Submit({.request_id = "waiting",
                     .prompt_token_ids = Prompt(5, 1),
                     .sampling = Greedy(4),
                     .sink = waiting,
                     .deadline = now + milliseconds(100)});
  h.engine().Submit(
      {.request_id = "patient", .prompt_token_ids = Prompt(5, 2), .sampling = Greedy(4), .sink = patient});
  h.engine().Start();
  ASSERT_TRUE(waiting->WaitFinished());
  EXPECT_EQ(waiting->last().finish_reason, FinishReason::kError);
  EXPECT_EQ(waiting->last().status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(waiting->tokens().empty());  // it never ran
  EXPECT_GE(std::chrono::steady_clock::now(), now + milliseconds(100));

  ASSERT_TRUE(running->WaitFinished());
  EXPECT_EQ(running->last().status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GT(running->tokens().size(), 0u);
  EXPECT_LT(running->tokens().size(), 100000u);
  // The one without a deadline then runs to its end.
  ASSERT_TRUE(patient->WaitFinished());
  EXPECT_EQ(patient->last().finish_reason, FinishReason::kLength);
  EXPECT_EQ(patient->tokens(), ExpectedTokens(Prompt(5, 2), 4));
  EXPECT_TRUE(h.WaitAllBlocksFree());
  EXPECT_EQ(h.engine().stats().num_unfinished.load(), 0);
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
