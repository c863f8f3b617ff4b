#include "worker/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace octet {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams Params(float temperature, int32_t top_k = 0, float top_p = 1.0f, int32_t logprobs = 0) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.logprobs = logprobs;
  return p;
}

std::vector<float> RandomLogits(int32_t vocab, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& v : logits) v = normal(gen);
  return logits;
}

// softmax(logits / temperature) in double, as the reference.
std::vector<double> Softmax(const std::vector<float>& logits, double temperature) {
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - m) / temperature);
  for (double& v : p) v /= sum;
  return p;
}

int32_t Argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Frequencies of each token over n draws.
std::vector<double> Frequencies(const std::vector<float>& logits, const SamplingParams& params, int n, uint64_t seed) {
  Sampler sampler;
  std::mt19937_64 rng(seed);
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) freq[sampler.Sample(logits, params, rng).token_id] += 1.0 / n;
  return freq;
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

TEST(SamplerTest, GreedyPicksArgmaxWithoutDrawing) {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.9f, 1.99f};
  std::mt19937_64 rng(7);
  const std::mt19937_64 before = rng;
  const SampleResult r = Sample(logits, Params(0.0f), rng);
  EXPECT_EQ(r.token_id, 1);
  EXPECT_EQ(rng, before);  // greedy leaves the request's rng alone
}

TEST(SamplerTest, GreedyTiesGoToLowestId) {
  const std::vector<float> logits = {1.0f, 3.0f, 0.0f, 3.0f, 3.0f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(Sample(logits, Params(0.0f), rng).token_id, 1);
}

TEST(SamplerTest, GreedyOnLargeVocab) {
  const std::vector<float> logits = RandomLogits(250000, 3);
  std::mt19937_64 rng(1);
  EXPECT_EQ(Sample(logits, Params(0.0f), rng).token_id, Argmax(logits));
}

TEST(SamplerTest, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const std::vector<float> logits = RandomLogits(1000, 11, 1.0f);
  for (const SamplingParams& params : {Params(1.0f), Params(0.8f, 50), Params(0.8f, 0, 0.9f)}) {
    auto run = [&](uint64_t seed) {
      Sampler sampler;
      std::mt19937_64 rng(seed);
      std::vector<int32_t> tokens;
      for (int i = 0; i < 64; ++i) tokens.push_back(sampler.Sample(logits, params, rng).token_id);
      return tokens;
    };
    EXPECT_EQ(run(42), run(42));
    EXPECT_NE(run(42), run(43));
  }
}

TEST(SamplerTest, OneDrawPerSampleIsTheInverseCdfInIdOrder) {
  // The documented draw: u = (rng() >> 11) * 2^-53, then the first token whose cumulative probability exceeds u.
  const std::vector<float> logits = RandomLogits(500, 5, 1.0f);
  const std::vector<double> p = Softmax(logits, 1.0);
  Sampler sampler;
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200; ++i) {
    std::mt19937_64 copy = rng;
    const double u = static_cast<double>(copy() >> 11) * 0x1.0p-53;
    double cum = 0.0;
    int32_t expected = 0;
    while (expected < 499 && cum + p[expected] <= u) cum += p[expected++];
    const SampleResult r = sampler.Sample(logits, Params(1.0f), rng);
    EXPECT_EQ(rng, copy) << "exactly one draw per sample";
    EXPECT_EQ(r.token_id, expected) << "u=" << u;
  }
}

TEST(SamplerTest, TopKOneIsGreedyAtAnyTemperature) {
  Sampler sampler;
  std::mt19937_64 rng(3);
  for (uint64_t row = 0; row < 20; ++row) {
    const std::vector<float> logits = RandomLogits(2000, row, 0.5f);
    for (float t : {0.01f, 0.5f, 1.0f, 5.0f, 1000.0f}) {
      EXPECT_EQ(sampler.Sample(logits, Params(t, 1), rng).token_id, Argmax(logits)) << "T=" << t;
    }
  }
}

TEST(SamplerTest, TinyTopPIsGreedy) {
  Sampler sampler;
  std::mt19937_64 rng(4);
  for (uint64_t row = 0; row < 20; ++row) {
    const std::vector<float> logits = RandomLogits(2000, row, 0.5f);
    for (float t : {0.5f, 1.0f, 5.0f}) {
      EXPECT_EQ(sampler.Sample(logits, Params(t, 0, 1e-6f), rng).token_id, Argmax(logits)) << "T=" << t;
      EXPECT_EQ(sampler.Sample(logits, Params(t, 100, 1e-6f), rng).token_id, Argmax(logits)) << "T=" << t;
    }
  }
}

TEST(SamplerTest, FrequenciesMatchSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, -1.5f, 1.2f, 0.7f};
  constexpr int kDraws = 200000;  // standard error <= 0.0012 per token
  for (float t : {1.0f, 0.5f, 2.0f}) {
    const std::vector<double> freq = Frequencies(logits, Params(t), kDraws, 123);
    EXPECT_LT(MaxAbsDiff(freq, Softmax(logits, t)), 0.006) << "T=" << t;
  }
}

TEST(SamplerTest, TopKRenormalisesOverTheKBest) {
  const std::vector<float> logits = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, -1.5f, 1.2f, 0.7f};
  // The 3 best are tokens 3, 6, 0.
  std::vector<double> expected(logits.size(), 0.0);
  const std::vector<double> top = Softmax({logits[3], logits[6], logits[0]}, 0.7);
  expected[3] = top[0];
  expected[6] = top[1];
  expected[0] = top[2];
  const std::vector<double> freq = Frequencies(logits, Params(0.7f, 3), 200000, 5);
  EXPECT_LT(MaxAbsDiff(freq, expected), 0.006);

  // Top-p then applies to the renormalised top-k mass: top[0] < 0.75 <= top[0] + top[1], so tokens 3 and 6 stay.
  ASSERT_LT(top[0], 0.75);
  ASSERT_GE(top[0] + top[1], 0.76);
  std::vector<double> nucleus(logits.size(), 0.0);
  nucleus[3] = top[0] / (top[0] + top[1]);
  nucleus[6] = top[1] / (top[0] + top[1]);
  const std::vector<double> both = Frequencies(logits, Params(0.7f, 3, 0.75f), 200000, 5);
  EXPECT_LT(MaxAbsDiff(both, nucleus), 0.006);
}

TEST(SamplerTest, TopPKeepsTheSmallestNucleus) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 (ids shuffled): top_p 0.7 keeps {0.5, 0.3}, renormalised to 5/8, 3/8.
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  const std::vector<double> freq = Frequencies(logits, Params(1.0f, 0, 0.7f), 200000, 6);
  EXPECT_EQ(freq[0], 0.0);
  EXPECT_EQ(freq[2], 0.0);
  EXPECT_NEAR(freq[1], 5.0 / 8.0, 0.006);
  EXPECT_NEAR(freq[3], 3.0 / 8.0, 0.006);
  // top_p 0.85 adds the 0.15 token; the 0.05 one stays out.
  const std::vector<double> wider = Frequencies(logits, Params(1.0f, 0, 0.85f), 200000, 6);
  EXPECT_EQ(wider[2], 0.0);
  EXPECT_NEAR(wider[0], 0.15 / 0.95, 0.006);
}

TEST(SamplerTest, TokensOutsideTopKOrTopPAreNeverSampled) {
  const std::vector<float> logits = RandomLogits(64, 21, 1.0f);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });

  // top_k = 5 at a high temperature (flat, so all 5 get drawn).
  const std::set<int32_t> top5(order.begin(), order.begin() + 5);
  std::set<int32_t> seen;
  Sampler sampler;
  std::mt19937_64 rng(8);
  for (int i = 0; i < 10000; ++i) {
    const int32_t t = sampler.Sample(logits, Params(3.0f, 5), rng).token_id;
    ASSERT_TRUE(top5.count(t)) << "token " << t << " is outside the top 5";
    seen.insert(t);
  }
  EXPECT_EQ(seen, top5);

  // top_p = 0.5: the nucleus from the reference softmax.
  const std::vector<double> p = Softmax(logits, 1.0);
  std::set<int32_t> nucleus;
  double cum = 0.0;
  for (int32_t id : order) {
    nucleus.insert(id);
    cum += p[id];
    if (cum >= 0.5) break;
  }
  ASSERT_GT(nucleus.size(), 1u);
  ASSERT_LT(nucleus.size(), logits.size());
  seen.clear();
  for (int i = 0; i < 10000; ++i) {
    const int32_t t = sampler.Sample(logits, Params(1.0f, 0, 0.5f), rng).token_id;
    ASSERT_TRUE(nucleus.count(t)) << "token " << t << " is outside the nucleus";
    seen.insert(t);
  }
  EXPECT_EQ(seen, nucleus);
}

TEST(SamplerTest, TopPOnFlatDistributionKeepsLowestIds) {
  // All ties: the nucleus of 0.5 is the first half of the ids; this also runs the growing-prefix search to the end.
  const std::vector<float> logits(1000, 0.0f);
  Sampler sampler;
  std::mt19937_64 rng(9);
  int32_t max_seen = 0;
  for (int i = 0; i < 5000; ++i)
    max_seen = std::max(max_seen, sampler.Sample(logits, Params(1.0f, 0, 0.5f), rng).token_id);
  EXPECT_LT(max_seen, 500);
  EXPECT_GT(max_seen, 480);
}

TEST(SamplerTest, TopPOnLargeVocabStaysInNucleus) {
  const std::vector<float> logits = RandomLogits(250000, 13, 2.0f);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  for (float top_p : {0.5f, 0.9f}) {
    const std::vector<double> p = Softmax(logits, 0.8);
    std::set<int32_t> nucleus;
    double cum = 0.0;
    for (int32_t id : order) {
      nucleus.insert(id);
      cum += p[id];
      if (cum >= top_p) break;
    }
    Sampler sampler;
    std::mt19937_64 rng(10);
    for (int i = 0; i < 50; ++i) {
      const int32_t t = sampler.Sample(logits, Params(0.8f, 0, top_p), rng).token_id;
      EXPECT_TRUE(nucleus.count(t)) << "top_p " << top_p << " nucleus of " << nucleus.size() << ", got " << t;
    }
  }
}

TEST(SamplerTest, LogprobsAreRawLogSoftmax) {
  const std::vector<float> logits = RandomLogits(300, 17, 2.0f);
  const std::vector<double> p = Softmax(logits, 1.0);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });

  std::mt19937_64 rng(12);
  // Temperature, top-k and top-p change what is drawn, not the reported log-probabilities.
  for (const SamplingParams& params : {Params(0.0f, 0, 1.0f, 5), Params(0.3f, 4, 0.9f, 5), Params(2.0f, 0, 1.0f, 5)}) {
    const SampleResult r = Sample(logits, params, rng);
    EXPECT_NEAR(r.logprob, std::log(p[r.token_id]), 1e-4);
    ASSERT_EQ(r.top.size(), 5u);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(r.top[i].token_id, order[i]);
      EXPECT_NEAR(r.top[i].logprob, std::log(p[order[i]]), 1e-4);
    }
  }

  // Over the whole vocabulary the probabilities sum to 1 and come best first.
  const SampleResult all = Sample(logits, Params(1.0f, 0, 1.0f, 300), rng);
  ASSERT_EQ(all.top.size(), 300u);
  double sum = 0.0;
  for (size_t i = 0; i < all.top.size(); ++i) {
    sum += std::exp(static_cast<double>(all.top[i].logprob));
    if (i > 0) {
      EXPECT_GE(all.top[i - 1].logprob, all.top[i].logprob);
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-4);

  // Asking for more than the vocabulary gives the vocabulary.
  EXPECT_EQ(Sample(logits, Params(1.0f, 0, 1.0f, 1000), rng).top.size(), 300u);
  EXPECT_TRUE(Sample(logits, Params(1.0f), rng).top.empty());
}

// Token ids by logit, best first, ties to the lower id: the reference order.
std::vector<int32_t> ReferenceOrder(const std::vector<float>& logits) {
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return order;
}

TEST(SamplerTest, TopLogprobsMatchAFullSortWithTies) {
  // Logits on a 0.25 grid: many ties, which must go to the lower id. Sizes cover both selection paths.
  std::vector<float> logits = RandomLogits(20000, 23, 2.0f);
  for (float& v : logits) v = std::round(v * 4.0f) / 4.0f;
  const std::vector<int32_t> order = ReferenceOrder(logits);
  std::mt19937_64 rng(1);
  Sampler sampler;
  for (int32_t n : {1, 5, 256, 257, 2000, 20000}) {
    const SampleResult r = sampler.Sample(logits, Params(0.0f, 0, 1.0f, n), rng);
    ASSERT_EQ(static_cast<int32_t>(r.top.size()), n);
    for (int32_t i = 0; i < n; ++i) ASSERT_EQ(r.top[i].token_id, order[i]) << "n=" << n << " rank " << i;
  }
}

TEST(SamplerTest, LargeTopKStaysInTopK) {
  const std::vector<float> logits = RandomLogits(20000, 29, 1.0f);
  const std::vector<int32_t> order = ReferenceOrder(logits);
  for (int32_t k : {300, 5000}) {
    const std::set<int32_t> allowed(order.begin(), order.begin() + k);
    Sampler sampler;
    std::mt19937_64 rng(k);
    std::set<int32_t> seen;
    for (int i = 0; i < 1500; ++i) {
      const int32_t t = sampler.Sample(logits, Params(5.0f, k), rng).token_id;
      ASSERT_TRUE(allowed.count(t)) << "k=" << k << " token " << t;
      seen.insert(t);
    }
    EXPECT_GT(seen.size(), std::min<size_t>(k / 4, 500)) << "a flat top-k should spread over it";
  }
}

TEST(SamplerTest, LogprobsOfHugeLogitsAreStable) {
  const std::vector<float> logits = {1e30f, 1e30f - 1e24f, -1e30f};
  std::mt19937_64 rng(1);
  const SampleResult r = Sample(logits, Params(0.0f, 0, 1.0f, 3), rng);
  EXPECT_EQ(r.token_id, 0);
  EXPECT_TRUE(std::isfinite(r.logprob));
  EXPECT_NEAR(r.logprob, 0.0f, 1e-6);
  EXPECT_FLOAT_EQ(r.top[1].logprob, logits[1] - logits[0]);  // exp(-1e24) underflows: token 0 has all the mass
  EXPECT_FLOAT_EQ(r.top[2].logprob, -2e30f);                 // no overflow to -inf, no NaN
}

TEST(SamplerTest, LowTemperatureSharpensHighTemperatureFlattens) {
  const std::vector<float> logits = {2.0f, 1.0f, 0.0f, -1.0f};
  const double greedy_share_cold = Frequencies(logits, Params(0.2f), 20000, 1)[0];
  const double greedy_share_warm = Frequencies(logits, Params(1.0f), 20000, 1)[0];
  const std::vector<double> hot = Frequencies(logits, Params(1000.0f), 20000, 1);
  EXPECT_GT(greedy_share_cold, 0.99);
  EXPECT_NEAR(greedy_share_warm, Softmax(logits, 1.0)[0], 0.02);
  for (double f : hot) EXPECT_NEAR(f, 0.25, 0.02);
}

TEST(SamplerTest, NaNLogitsAreNeverChosen) {
  std::vector<float> logits = RandomLogits(100, 2, 1.0f);
  for (int i = 0; i < 100; i += 3) logits[i] = kNaN;
  Sampler sampler;
  std::mt19937_64 rng(2);
  for (const SamplingParams& params :
       {Params(0.0f, 0, 1.0f, 5), Params(1.0f, 0, 1.0f, 5), Params(1.0f, 10, 1.0f, 5), Params(1.0f, 0, 0.9f, 5)}) {
    for (int i = 0; i < 500; ++i) {
      const SampleResult r = sampler.Sample(logits, params, rng);
      ASSERT_NE(r.token_id % 3, 0) << "NaN token " << r.token_id << " chosen";
      ASSERT_TRUE(std::isfinite(r.logprob));
      for (const TokenLogprob& t : r.top) ASSERT_NE(t.token_id % 3, 0);
    }
  }
}

TEST(SamplerTest, AllNaNOrMinusInfDoesNotCrash) {
  Sampler sampler;
  std::mt19937_64 rng(3);
  for (float bad : {kNaN, -kInf}) {
    const std::vector<float> logits(50, bad);
    for (const SamplingParams& params :
         {Params(0.0f, 0, 1.0f, 1), Params(1.0f, 0, 1.0f, 3), Params(0.7f, 5, 0.5f, 3)}) {
      const SampleResult r = sampler.Sample(logits, params, rng);
      EXPECT_GE(r.token_id, 0);
      EXPECT_LT(r.token_id, 50);
      EXPECT_NEAR(r.logprob, -std::log(50.0f), 1e-5);  // documented: uniform
    }
  }
}

TEST(SamplerTest, PlusInfLogitsTakeAllTheMass) {
  std::vector<float> logits = RandomLogits(40, 4, 1.0f);
  logits[7] = kInf;
  logits[30] = kInf;
  logits[8] = kNaN;
  Sampler sampler;
  std::mt19937_64 rng(4);
  std::set<int32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const SampleResult r = sampler.Sample(logits, Params(1.0f, 0, 1.0f, 2), rng);
    ASSERT_TRUE(r.token_id == 7 || r.token_id == 30) << r.token_id;
    EXPECT_NEAR(r.logprob, std::log(0.5f), 1e-6);
    seen.insert(r.token_id);
  }
  EXPECT_EQ(seen.size(), 2u);
  std::mt19937_64 greedy_rng(4);
  EXPECT_EQ(sampler.Sample(logits, Params(0.0f), greedy_rng).token_id, 7);
}

TEST(SamplerTest, LogprobOnlyWhenAsked) {
  const std::vector<float> logits = RandomLogits(1000, 9);
  std::mt19937_64 rng(9);
  for (float temperature : {0.0f, 0.8f}) {
    EXPECT_TRUE(std::isnan(Sample(logits, Params(temperature), rng).logprob));
    const SampleResult r = Sample(logits, Params(temperature, 0, 1.0f, 1), rng);
    EXPECT_NEAR(r.logprob, std::log(Softmax(logits, 1.0)[r.token_id]), 1e-4);
  }
}

TEST(SamplerTest, ReusedSamplerMatchesFreshOne) {
  Sampler reused;
  std::mt19937_64 a(77);
  std::mt19937_64 b(77);
  for (int32_t vocab : {10, 5000, 3, 700}) {
    const std::vector<float> logits = RandomLogits(vocab, vocab, 1.5f);
    for (const SamplingParams& params : {Params(1.0f, 0, 1.0f, 2), Params(0.9f, 8, 0.8f, 2), Params(0.6f, 0, 0.7f)}) {
      const SampleResult x = reused.Sample(logits, params, a);
      const SampleResult y = Sample(logits, params, b);
      EXPECT_EQ(x.token_id, y.token_id);
      EXPECT_EQ(std::isnan(x.logprob), std::isnan(y.logprob));
      if (!std::isnan(x.logprob)) EXPECT_EQ(x.logprob, y.logprob);
      ASSERT_EQ(x.top.size(), y.top.size());
      for (size_t i = 0; i < x.top.size(); ++i) EXPECT_EQ(x.top[i].token_id, y.top[i].token_id);
    }
  }
}

}  // namespace
}  // namespace octet
