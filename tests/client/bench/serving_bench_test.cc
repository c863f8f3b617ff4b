// `octet bench`'s load generator against an in-process fake worker: what it measures, the concurrency cap, the
// arrival schedule, warm-up and failures.
#include "client/bench/serving_bench.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "client/bench/arrivals.h"
#include "tests/router/fake_worker.h"

namespace octet::bench {
namespace {

std::shared_ptr<grpc::Channel> ChannelTo(const testing::FakeWorker& worker) {
  return grpc::CreateChannel(worker.address(), grpc::InsecureChannelCredentials());
}

std::vector<BenchPrompt> Prompts(int count) { return BuildPrompts({.input_len = 8, .output_len = 4}, 1000, count); }

TEST(ServingBench, TimesEveryMeasuredRequestAfterTheWarmUp) {
  testing::FakeWorker worker;
  worker.num_chunks = 4;  // one token a message, then a last message with usage
  worker.chunk_delay_ms = 5;
  absl::StatusOr<BenchRun> run = RunServingBench(ChannelTo(worker), Prompts(2 + 8), {.warmup = 2});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(worker.generate_calls, 10);
  ASSERT_EQ(run->requests.size(), 8u);  // the warm-up requests are not reported
  double longest = 0;
  for (const RequestResult& r : run->requests) {
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(r.output_tokens, 4);
    EXPECT_EQ(r.itls_s.size(), 3u);  // gaps between the 4 messages carrying tokens
    EXPECT_GT(r.ttft_s, 0.0);
    EXPECT_LE(r.ttft_s, r.e2e_s);
    double decode = 0;
    for (double itl : r.itls_s) decode += itl;
    EXPECT_LE(r.ttft_s + decode, r.e2e_s);
    longest = std::max(longest, r.e2e_s);
  }
  EXPECT_GE(run->duration_s, longest);
}

TEST(ServingBench, MaxConcurrencyHoldsRequestsBack) {
  testing::FakeWorker worker;
  worker.num_chunks = 4;
  worker.chunk_delay_ms = 20;  // >= 80 ms a request
  absl::StatusOr<BenchRun> run = RunServingBench(ChannelTo(worker), Prompts(6), {.max_concurrency = 2, .warmup = 0});
  ASSERT_TRUE(run.ok()) << run.status();
  // Six requests two at a time take at least three request times.
  EXPECT_GE(run->duration_s, 0.24);
}

TEST(ServingBench, RequestsFollowThePoissonSchedule) {
  testing::FakeWorker worker;
  worker.num_chunks = 1;
  const LoadOptions load{.request_rate = 20.0, .warmup = 0, .seed = 4};
  absl::StatusOr<BenchRun> run = RunServingBench(ChannelTo(worker), Prompts(10), load);
  ASSERT_TRUE(run.ok()) << run.status();
  const double last_arrival = ArrivalOffsets(10, load.request_rate, load.seed).back();
  EXPECT_GT(last_arrival, 0.1);
  EXPECT_GE(run->duration_s, last_arrival);
}

TEST(ServingBench, AFailedWarmUpFailsTheBenchmark) {
  testing::FakeWorker worker;
  worker.abort_code = static_cast<int>(grpc::StatusCode::UNAVAILABLE);
  absl::StatusOr<BenchRun> run = RunServingBench(ChannelTo(worker), Prompts(3), {.warmup = 1});
  EXPECT_EQ(run.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(run.status().message(), "warm-up request failed: fake failure");
  EXPECT_EQ(worker.generate_calls, 1);
}

TEST(ServingBench, FailedRequestsKeepTheirCodeAndWhatTheyStreamed) {
  testing::FakeWorker worker;
  worker.num_chunks = 5;
  worker.abort_code = static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
  worker.abort_after = 2;
  absl::StatusOr<BenchRun> run = RunServingBench(ChannelTo(worker), Prompts(3), {.warmup = 0});
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->requests.size(), 3u);
  for (const RequestResult& r : run->requests) {
    EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(r.output_tokens, 2);
    EXPECT_EQ(r.prompt_tokens, 8);  // no usage came: the prompt's length
  }
}

TEST(ServingBench, TheTimeoutIsEachCallsDeadline) {
  testing::FakeWorker worker;
  worker.num_chunks = 100;
  worker.chunk_delay_ms = 10;
  absl::StatusOr<BenchRun> run =
      RunServingBench(ChannelTo(worker), Prompts(2), {.warmup = 0, .timeout = absl::Milliseconds(100)});
  ASSERT_TRUE(run.ok()) << run.status();
  for (const RequestResult& r : run->requests) EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(run->duration_s, 0.9);
}

}  // namespace
}  // namespace octet::bench
