#include "worker/eval/metrics.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace octet::eval {
namespace {

TEST(MetricsTest, KlOfIdenticalDistributionsIsZero) {
  const std::vector<float> logits = {1.5f, -2.0f, 0.25f, 3.0f, -7.0f};
  EXPECT_EQ(KlDivergence(logits, logits), 0.0);
  // Softmax ignores a constant shift: the same distribution, KL 0 up to rounding.
  std::vector<float> shifted = logits;
  for (float& x : shifted) x += 40.0f;
  EXPECT_NEAR(KlDivergence(logits, shifted), 0.0, 1e-12);
}

TEST(MetricsTest, KlMatchesTheClosedForm) {
  // P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 ln 2 + 1/2 ln(2/3).
  const std::vector<float> p = {0.0f, 0.0f};
  const std::vector<float> q = {0.0f, static_cast<float>(std::log(3.0))};
  const double want = 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0);
  EXPECT_NEAR(KlDivergence(p, q), want, 1e-7);
  // Asymmetric: KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2).
  EXPECT_NEAR(KlDivergence(q, p), 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
}

TEST(MetricsTest, KlIgnoresTokensThatPGivesNoMass) {
  const float inf = INFINITY;
  const std::vector<float> p = {0.0f, -inf, 0.0f};  // P = (1/2, 0, 1/2)
  const std::vector<float> q = {0.0f, 0.0f, 0.0f};  // Q uniform over 3
  EXPECT_NEAR(KlDivergence(p, q), std::log(1.5), 1e-7);
}

TEST(MetricsTest, LogSumExpIsStableForLargeLogits) {
  EXPECT_NEAR(LogSumExp(std::vector<float>{1000.0f, 1000.0f}), 1000.0 + std::log(2.0), 1e-9);
  EXPECT_NEAR(LogSumExp(std::vector<float>{-1000.0f}), -1000.0, 1e-9);
}

TEST(MetricsTest, ArgmaxTakesTheFirstOfTies) {
  EXPECT_EQ(Argmax(std::vector<float>{0.0f, 2.0f, -1.0f, 2.0f}), 1);
  EXPECT_EQ(Argmax(std::vector<float>{5.0f}), 0);
}

TEST(MetricsTest, PerplexityOfAUniformModelIsTheVocabularySize) {
  const int32_t vocab = 37;
  const std::vector<int32_t> targets = {3, 0, 36, 12, 12};
  const std::vector<float> logits(targets.size() * vocab, 0.25f);  // every row uniform
  Metrics m;
  AccumulateWindow(logits, logits, targets, vocab, m);
  EXPECT_EQ(m.num_positions, 5);
  EXPECT_NEAR(m.Perplexity(), 37.0, 1e-9);
  EXPECT_EQ(m.MeanKl(), 0.0);
  EXPECT_EQ(m.Top1Agreement(), 1.0);
}

TEST(MetricsTest, NllIsMinusTheLogProbabilityOfTheTarget) {
  // Row 0: P(target 1) = e^2 / (1 + e^2 + 1); row 1: P(target 0) = 1/3.
  const std::vector<float> logits = {0.0f, 2.0f, 0.0f, /**/ 0.0f, 0.0f, 0.0f};
  Metrics m;
  AccumulateWindow(logits, logits, std::vector<int32_t>{1, 0}, 3, m);
  const double nll0 = -std::log(std::exp(2.0) / (2.0 + std::exp(2.0)));
  EXPECT_NEAR(m.nll_sum, nll0 + std::log(3.0), 1e-9);
  EXPECT_NEAR(m.MeanNll(), (nll0 + std::log(3.0)) / 2, 1e-9);
  EXPECT_NEAR(m.Perplexity(), std::exp(m.MeanNll()), 1e-12);
}

TEST(MetricsTest, TopOneAgreementCountsMatchingArgmaxes) {
  const int32_t vocab = 3;
  // Argmaxes: baseline 0, 1, 2, 2; setting 0, 2, 2, 1 -> 2 of 4 agree.
  const std::vector<float> base = {5, 0, 0, /**/ 0, 5, 0, /**/ 0, 0, 5, /**/ 0, 1, 2};
  const std::vector<float> other = {4, 1, 0, /**/ 0, 1, 2, /**/ 1, 0, 3, /**/ 0, 9, 2};
  Metrics m;
  AccumulateWindow(base, other, std::vector<int32_t>{0, 0, 0, 0}, vocab, m);
  EXPECT_EQ(m.top1_matches, 2);
  EXPECT_DOUBLE_EQ(m.Top1Agreement(), 0.5);
  EXPECT_GT(m.MeanKl(), 0.0);
  double kl = 0;
  for (int i = 0; i < 4; ++i) {
    kl += KlDivergence(absl::MakeConstSpan(base).subspan(i * 3, 3), absl::MakeConstSpan(other).subspan(i * 3, 3));
  }
  EXPECT_NEAR(m.kl_sum, kl, 1e-12);
}

TEST(MetricsTest, OnlyTheRowsWithTargetsAreScored) {
  // Three rows of logits, two targets: the last row (the window's final token) predicts nothing.
  const std::vector<float> base = {1, 0, /**/ 0, 1, /**/ 0, 1};
  const std::vector<float> other = {1, 0, /**/ 0, 1, /**/ 9, -9};
  Metrics m;
  AccumulateWindow(base, other, std::vector<int32_t>{0, 1}, 2, m);
  EXPECT_EQ(m.num_positions, 2);
  EXPECT_EQ(m.top1_matches, 2);
  EXPECT_EQ(m.kl_sum, 0.0);
}

TEST(MetricsTest, MergeAddsTotalsAndEmptyMetricsAreNaN) {
  Metrics empty;
  EXPECT_TRUE(std::isnan(empty.Perplexity()));
  EXPECT_TRUE(std::isnan(empty.MeanKl()));
  EXPECT_TRUE(std::isnan(empty.Top1Agreement()));
  Metrics a{.num_positions = 2, .nll_sum = 1.0, .kl_sum = 0.5, .top1_matches = 1};
  a.Merge({.num_positions = 2, .nll_sum = 3.0, .kl_sum = 0.5, .top1_matches = 2});
  EXPECT_EQ(a.num_positions, 4);
  EXPECT_DOUBLE_EQ(a.MeanNll(), 1.0);
  EXPECT_DOUBLE_EQ(a.MeanKl(), 0.25);
  EXPECT_DOUBLE_EQ(a.Top1Agreement(), 0.75);
}

}  // namespace
}  // namespace octet::eval
