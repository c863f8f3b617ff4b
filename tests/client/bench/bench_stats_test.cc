// The statistics of `octet bench`: percentiles as numpy computes them, mean and deviation, TPOT, and the totals.
#include "client/bench/bench_stats.h"

#include <gtest/gtest.h>

#include <vector>

namespace octet::bench {
namespace {

TEST(Percentile, InterpolatesLinearlyBetweenRanksLikeNumpy) {
  const std::vector<double> v = {4, 1, 3, 2};  // order does not matter
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 2.5);   // numpy.percentile([1, 2, 3, 4], 50)
  EXPECT_DOUBLE_EQ(Percentile(v, 90), 3.7);   // rank 0.9 * 3 = 2.7
  EXPECT_DOUBLE_EQ(Percentile(v, 99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 4.0);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_DOUBLE_EQ(Percentile(hundred, 50), 50.5);
  EXPECT_DOUBLE_EQ(Percentile(hundred, 90), 90.1);
  EXPECT_DOUBLE_EQ(Percentile(hundred, 99), 99.01);
  EXPECT_DOUBLE_EQ(Percentile({7.5}, 99), 7.5);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0.0);
}

TEST(Summarize, MeanDeviationAndOrderedPercentiles) {
  const Distribution d = Summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(d.mean, 5.0);
  EXPECT_DOUBLE_EQ(d.std, 2.0);
  EXPECT_DOUBLE_EQ(d.median, 4.5);
  EXPECT_DOUBLE_EQ(d.p90, 7.6);   // rank 6.3
  EXPECT_DOUBLE_EQ(d.p99, 8.86);  // rank 6.93
  EXPECT_LE(d.median, d.p90);
  EXPECT_LE(d.p90, d.p99);
  const Distribution empty = Summarize({});
  EXPECT_EQ(empty.mean, 0.0);
  EXPECT_EQ(empty.p99, 0.0);
}

TEST(TimePerOutputToken, IsTheDecodeTimeOverTheTokensAfterTheFirst) {
  EXPECT_DOUBLE_EQ(*TimePerOutputToken(/*e2e_s=*/1.0, /*ttft_s=*/0.1, /*output_tokens=*/10), 0.1);
  EXPECT_DOUBLE_EQ(*TimePerOutputToken(0.5, 0.2, 2), 0.3);
  EXPECT_FALSE(TimePerOutputToken(0.5, 0.5, 1).has_value());
  EXPECT_FALSE(TimePerOutputToken(0.5, 0.5, 0).has_value());
}

TEST(ComputeMetrics, CountsCompletedRequestsAndFailuresByCode) {
  std::vector<RequestResult> requests(4);
  requests[0] = {.prompt_tokens = 10, .output_tokens = 5, .ttft_s = 0.1, .e2e_s = 0.5, .itls_s = {0.1, 0.1, 0.2}};
  requests[1] = {.prompt_tokens = 20, .output_tokens = 1, .ttft_s = 0.3, .e2e_s = 0.3};  // no TPOT, no ITL
  requests[2] = {.status = absl::UnavailableError("worker lost"),
                 .prompt_tokens = 7,
                 .output_tokens = 2,
                 .ttft_s = 0.05,
                 .e2e_s = 0.2,
                 .itls_s = {0.15}};
  requests[3] = {.status = absl::UnavailableError("worker lost"), .prompt_tokens = 7};
  const BenchMetrics m = ComputeMetrics(requests, /*duration_s=*/2.0);
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.failed, 2);
  EXPECT_EQ(m.failed_by_code, (std::map<std::string, int32_t>{{"UNAVAILABLE", 2}}));
  EXPECT_EQ(m.total_input_tokens, 30);  // failed requests do not count
  EXPECT_EQ(m.total_output_tokens, 6);
  EXPECT_DOUBLE_EQ(m.duration_s, 2.0);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(m.output_throughput, 3.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 18.0);
  EXPECT_DOUBLE_EQ(m.ttft_ms.mean, 200.0);
  EXPECT_DOUBLE_EQ(m.ttft_ms.median, 200.0);
  EXPECT_DOUBLE_EQ(m.e2el_ms.mean, 400.0);
  EXPECT_DOUBLE_EQ(m.tpot_ms.mean, 100.0);  // (0.5 - 0.1) / 4 from the only request with 2+ tokens
  EXPECT_DOUBLE_EQ(m.itl_ms.mean, 400.0 / 3.0);
  EXPECT_NEAR(m.itl_ms.p99, 198.0, 1e-9);  // rank 1.98 over {100, 100, 200}
}

TEST(ComputeMetrics, NoDurationGivesNoThroughput) {
  const BenchMetrics m = ComputeMetrics({}, 0.0);
  EXPECT_EQ(m.completed, 0);
  EXPECT_EQ(m.request_throughput, 0.0);
  EXPECT_EQ(m.output_throughput, 0.0);
}

}  // namespace
}  // namespace octet::bench
