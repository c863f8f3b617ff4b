// Poisson arrivals of `octet bench`: seeded, with mean gap 1 / rate, and all at once for an infinite rate.
#include "client/bench/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace octet::bench {
namespace {

std::vector<double> Gaps(double rate, uint64_t seed, int n) {
  PoissonArrivals arrivals(rate, seed);
  std::vector<double> gaps;
  for (int i = 0; i < n; ++i) gaps.push_back(arrivals.NextGapSeconds());
  return gaps;
}

TEST(PoissonArrivals, GapsHaveMeanAndDeviationOneOverTheRate) {
  constexpr int kN = 20000;
  const std::vector<double> gaps = Gaps(/*rate=*/4.0, /*seed=*/5, kN);
  double sum = 0;
  for (double g : gaps) {
    ASSERT_GE(g, 0.0);
    sum += g;
  }
  const double mean = sum / kN;
  double squares = 0;
  for (double g : gaps) squares += (g - mean) * (g - mean);
  const double sd = std::sqrt(squares / kN);
  // Exponential with mean 0.25: the sample mean's sd is 0.25 / sqrt(20000) = 0.0018; 3% is 4 of those.
  EXPECT_NEAR(mean, 0.25, 0.25 * 0.03);
  EXPECT_NEAR(sd, 0.25, 0.25 * 0.05);  // an exponential's sd equals its mean
}

TEST(PoissonArrivals, TheSameSeedGivesTheSameGaps) {
  EXPECT_EQ(Gaps(10.0, 42, 100), Gaps(10.0, 42, 100));
  EXPECT_NE(Gaps(10.0, 42, 100), Gaps(10.0, 43, 100));
}

TEST(PoissonArrivals, InfiniteRateSendsEverythingAtOnce) {
  EXPECT_EQ(Gaps(std::numeric_limits<double>::infinity(), 1, 5), std::vector<double>(5, 0.0));
  EXPECT_EQ(ArrivalOffsets(4, std::numeric_limits<double>::infinity(), 1), std::vector<double>(4, 0.0));
}

TEST(ArrivalOffsets, StartAtZeroAndAccumulateTheGaps) {
  const std::vector<double> offsets = ArrivalOffsets(50, 8.0, 9);
  const std::vector<double> gaps = Gaps(8.0, 9, 49);
  ASSERT_EQ(offsets.size(), 50u);
  EXPECT_EQ(offsets[0], 0.0);
  double t = 0;
  for (size_t i = 1; i < offsets.size(); ++i) {
    t += gaps[i - 1];
    EXPECT_DOUBLE_EQ(offsets[i], t);
  }
  EXPECT_TRUE(ArrivalOffsets(0, 8.0, 9).empty());
}

}  // namespace
}  // namespace octet::bench
