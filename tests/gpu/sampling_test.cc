// cuda::SampleRows against the sampling rules of worker/engine/sampler.h computed here in double: greedy picks the
// CPU's token (special values included), sampled tokens stay inside the top-k / top-p set, their frequencies over
// many seeds match the exact probabilities, and a seed repeats its token.
#include "kernels/cuda/sampling.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::DeviceBuffer;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> RandomRow(int64_t vocab, uint64_t seed, float scale) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(vocab);
  for (float& x : v) x = d(gen);
  return v;
}

// Runs one launch over rows (each row's logits and params), returns the tokens.
std::vector<int32_t> Sample(const std::vector<float>& logits, int64_t vocab, const std::vector<SamplingRow>& params) {
  const int64_t rows = static_cast<int64_t>(params.size());
  DeviceBuffer<float> d_logits(logits);
  std::vector<uint8_t> raw(params.size() * sizeof(SamplingRow));
  std::memcpy(raw.data(), params.data(), raw.size());
  DeviceBuffer<uint8_t> d_params(raw);
  DeviceBuffer<int32_t> d_tokens(static_cast<size_t>(rows));
  DeviceBuffer<uint8_t> workspace(SampleRowsWorkspaceBytes(rows, vocab));
  EXPECT_EQ(SampleRows(d_logits.get(), rows, vocab, reinterpret_cast<const SamplingRow*>(d_params.get()),
                       d_tokens.get(), workspace.get(), workspace.size(), nullptr),
            cudaSuccess);
  return d_tokens.Download();
}

// The exact probabilities the rules give one row (double): weights, top-k (ties at the boundary kept), top-p.
std::vector<double> Probabilities(const std::vector<float>& x, const SamplingRow& p) {
  const int64_t vocab = static_cast<int64_t>(x.size());
  float m = -kInf;
  for (float v : x) m = std::isnan(v) ? m : std::max(m, v);
  std::vector<double> w(vocab);
  for (int64_t i = 0; i < vocab; ++i) {
    if (m == kInf) {
      w[i] = x[i] == kInf;
    } else if (m == -kInf) {
      w[i] = 1.0;
    } else {
      w[i] = x[i] > -kInf ? std::exp(static_cast<double>((x[i] - m) / p.temperature)) : 0.0;
    }
  }
  std::vector<double> sorted = w;
  std::sort(sorted.rbegin(), sorted.rend());
  double tau = 0.0;
  if (p.top_k > 0 && p.top_k < vocab) tau = sorted[p.top_k - 1];
  if (p.top_p < 1.0f) {
    double mass = 0.0;
    for (double v : w) mass += v >= tau ? v : 0.0;
    double cum = 0.0;
    for (double v : sorted) {
      if (v < tau) break;
      cum += v;
      if (cum >= p.top_p * mass) {
        tau = v;
        break;
      }
    }
  }
  double kept = 0.0;
  for (double& v : w) {
    v = v >= tau ? v : 0.0;
    kept += v;
  }
  for (double& v : w) v /= kept;
  return w;
}

TEST(SamplingTest, GreedyIsTheFirstMaximum) {
  const int64_t vocab = 1000;
  std::vector<std::vector<float>> rows;
  rows.push_back(RandomRow(vocab, 1, 3.0f));
  std::vector<float> ties = RandomRow(vocab, 2, 1.0f);
  ties[400] = ties[700] = ties[900] = 50.0f;  // first of the tied maxima: 400
  rows.push_back(ties);
  std::vector<float> nan = RandomRow(vocab, 3, 1.0f);
  nan[0] = kNaN;
  nan[5] = 100.0f;
  rows.push_back(nan);
  std::vector<float> inf = RandomRow(vocab, 4, 1.0f);
  inf[9] = kInf;
  inf[3] = kInf;
  rows.push_back(inf);
  rows.push_back(std::vector<float>(vocab, -kInf));
  std::vector<float> nothing(vocab, kNaN);
  nothing[10] = -kInf;
  rows.push_back(nothing);
  std::vector<float> logits;
  for (const auto& r : rows) logits.insert(logits.end(), r.begin(), r.end());
  const std::vector<int32_t> got = Sample(logits, vocab, std::vector<SamplingRow>(rows.size()));
  const int32_t want0 = static_cast<int32_t>(std::max_element(rows[0].begin(), rows[0].end()) - rows[0].begin());
  EXPECT_EQ(got, (std::vector<int32_t>{want0, 400, 5, 3, 0, 0}));
}

TEST(SamplingTest, TokensStayInsideTopKAndTopP) {
  const int64_t vocab = 5000;
  const std::vector<float> row = RandomRow(vocab, 11, 2.0f);
  for (const SamplingRow base : {SamplingRow{1.0f, 10, 1.0f, 0}, SamplingRow{0.7f, 0, 0.8f, 0},
                                 SamplingRow{1.3f, 50, 0.5f, 0}, SamplingRow{1.0f, 1, 1.0f, 0}}) {
    const std::vector<double> prob = Probabilities(row, base);
    const int64_t draws = 2000;
    std::vector<SamplingRow> params(draws, base);
    for (int64_t i = 0; i < draws; ++i) params[i].seed = 1000 + i;
    std::vector<float> logits;
    for (int64_t i = 0; i < draws; ++i) logits.insert(logits.end(), row.begin(), row.end());
    const std::vector<int32_t> got = Sample(logits, vocab, params);
    for (int32_t t : got) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, vocab);
      ASSERT_GT(prob[t], 0.0) << "token " << t << " outside the kept set (T " << base.temperature << ", k "
                              << base.top_k << ", p " << base.top_p << ")";
    }
    // A seed repeats its token.
    EXPECT_EQ(Sample(logits, vocab, params), got);
  }
}

TEST(SamplingTest, FrequenciesMatchTheProbabilities) {
  const int64_t vocab = 50, draws = 40000;
  const std::vector<float> row = RandomRow(vocab, 21, 1.5f);
  for (const SamplingRow base : {SamplingRow{0.8f, 20, 0.9f, 0}, SamplingRow{1.0f, 0, 1.0f, 0}}) {
    const std::vector<double> prob = Probabilities(row, base);
    std::vector<SamplingRow> params(draws, base);
    for (int64_t i = 0; i < draws; ++i) params[i].seed = 77 * i + 5;
    std::vector<float> logits;
    for (int64_t i = 0; i < draws; ++i) logits.insert(logits.end(), row.begin(), row.end());
    std::vector<double> freq(vocab, 0.0);
    for (int32_t t : Sample(logits, vocab, params)) freq[t] += 1.0 / draws;
    for (int64_t i = 0; i < vocab; ++i) {
      const double sigma = std::sqrt(prob[i] * (1 - prob[i]) / draws);
      EXPECT_NEAR(freq[i], prob[i], 5 * sigma + 1e-4) << "token " << i;
    }
  }
}

TEST(SamplingTest, QwenVocabularyTiming) {
  const int64_t vocab = 248320, rows = 64;
  std::vector<float> logits;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> row = RandomRow(vocab, 100 + r, 3.0f);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  DeviceBuffer<float> d_logits(logits);
  DeviceBuffer<int32_t> d_tokens(rows);
  DeviceBuffer<uint8_t> workspace(SampleRowsWorkspaceBytes(rows, vocab));
  for (const SamplingRow base :
       {SamplingRow{0.0f, 0, 1.0f, 0}, SamplingRow{0.7f, 0, 0.95f, 0}, SamplingRow{0.7f, 50, 0.95f, 0}}) {
    std::vector<SamplingRow> params(rows, base);
    for (int64_t i = 0; i < rows; ++i) params[i].seed = i;
    std::vector<uint8_t> raw(params.size() * sizeof(SamplingRow));
    std::memcpy(raw.data(), params.data(), raw.size());
    DeviceBuffer<uint8_t> d_params(raw);
    auto run = [&] {
      ASSERT_EQ(SampleRows(d_logits.get(), rows, vocab, reinterpret_cast<const SamplingRow*>(d_params.get()),
                           d_tokens.get(), workspace.get(), workspace.size(), nullptr),
                cudaSuccess);
      CUDA_CHECK(cudaDeviceSynchronize());
    };
    run();
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) run();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 5;
    std::printf("[sampling] %lld rows x %lld vocab, T %.1f top_k %d top_p %.2f: %.3f ms\n",
                static_cast<long long>(rows), static_cast<long long>(vocab), base.temperature, base.top_k, base.top_p,
                ms);
    for (int32_t t : d_tokens.Download()) ASSERT_TRUE(t >= 0 && t < vocab);
  }
}

}  // namespace
}  // namespace octet::cuda
