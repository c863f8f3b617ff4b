// Sampler: greedy / temperature / top-k / top-p token selection and raw log-probabilities over one logits row.
#include "worker/engine/sampler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "base/log.h"

namespace octet {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Strict total order on candidates (their logits are never NaN): higher logit first, then lower id. Being total, it
// makes every selection and sort below independent of the standard library's algorithms.
struct BetterFirst {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.token_id < b.token_id);
  }
};

// Sorts tokens into kNumBins bins by how far their logit / temperature lies below the maximum. The bins split the
// span from the maximum down to the smallest logit above -inf, or to e^-64 of the maximum if that is nearer; the last
// bin also takes everything further down, -inf included. A better token (BetterFirst) never lands in a later bin, so
// a selection of the best tokens can take whole bins and sort only the bin where it ends.
class LogitBins {
 public:
  static constexpr int32_t kNumBins = 1024;

  LogitBins(float max_logit, float min_logit, float temperature) : max_logit_(max_logit), temperature_(temperature) {
    const float span_below_max = std::min((max_logit - min_logit) / temperature, 64.0f);
    bins_per_unit_ = span_below_max > 0.0f ? (kNumBins - 1) / span_below_max : 0.0f;
  }

  int32_t operator()(float v) const {
    const float s = (max_logit_ - v) / temperature_ * bins_per_unit_;  // >= 0; +inf or NaN for a -inf logit
    return s < kNumBins - 1 ? static_cast<int32_t>(s) : kNumBins - 1;
  }

 private:
  float max_logit_;
  float temperature_;
  float bins_per_unit_;
};

// Smallest value of x above -inf (max_logit if there is none).
float MinLogit(std::span<const float> x, float max_logit) {
  float m = max_logit;
  for (float v : x) m = v > -kInf && v < m ? v : m;
  return m;
}

// Uniform in [0, 1) from the top 53 bits of one raw draw; std::uniform_real_distribution differs between libraries.
double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Index into w drawn with probability w[i] / total, where total is the sum of w in order (as computed by the caller).
int32_t DrawIndex(std::span<const float> w, double total, std::mt19937_64& rng) {
  const double u = Uniform01(rng) * total;
  double cum = 0.0;
  int32_t last_positive = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] > 0.0f) {
      cum += w[i];
      last_positive = static_cast<int32_t>(i);
      if (u < cum) return last_positive;
    }
  }
  return last_positive;  // u rounded up to the total: take the last token that has any mass
}

// sum(exp(x - max_logit)); >= 1 because the maximum contributes exp(0).
double SumExp(std::span<const float> x, float max_logit) {
  double sum = 0.0;
  for (float v : x) sum += std::exp(v - max_logit);
  return sum;
}

}  // namespace

std::span<const float> Sampler::CleanLogits(std::span<const float> logits, float* max_logit) {
  float m = -kInf;
  bool all_finite = true;
  for (float v : logits) {
    all_finite &= v - v == 0.0f;  // false for +-inf and NaN; unlike std::isfinite, the loop vectorises
    m = v > m ? v : m;            // NaN never compares greater
  }
  if (all_finite) {
    *max_logit = m;
    return logits;
  }
  clean_.resize(logits.size());
  if (m == kInf) {  // the +inf tokens share all the mass
    for (size_t i = 0; i < logits.size(); ++i) clean_[i] = logits[i] == kInf ? 0.0f : -kInf;
    *max_logit = 0.0f;
  } else if (m == -kInf) {  // nothing above -inf (all -inf or NaN): uniform
    std::fill(clean_.begin(), clean_.end(), 0.0f);
    *max_logit = 0.0f;
  } else {  // finite maximum: NaN becomes -inf
    for (size_t i = 0; i < logits.size(); ++i) clean_[i] = std::isnan(logits[i]) ? -kInf : logits[i];
    *max_logit = m;
  }
  return clean_;
}

void Sampler::SelectTop(std::span<const float> x, int32_t n, float max_logit) {
  // Up to this many, a heap of the best so far costs most tokens one comparison; beyond, binning is cheaper.
  constexpr int32_t kMaxHeap = 256;
  const int32_t vocab = static_cast<int32_t>(x.size());
  n = std::clamp(n, 0, vocab);
  candidates_.clear();
  if (n == 0) return;
  if (n <= kMaxHeap) {
    // Heap front: the worst of the n best so far.
    candidates_.reserve(n);
    for (int32_t i = 0; i < vocab; ++i) {
      const Candidate c{x[i], i};
      if (static_cast<int32_t>(candidates_.size()) < n) {
        candidates_.push_back(c);
        std::push_heap(candidates_.begin(), candidates_.end(), BetterFirst());
      } else if (BetterFirst()(c, candidates_.front())) {
        std::pop_heap(candidates_.begin(), candidates_.end(), BetterFirst());
        candidates_.back() = c;
        std::push_heap(candidates_.begin(), candidates_.end(), BetterFirst());
      }
    }
  } else {
    // Count tokens per bin, take every bin up to the one where the count reaches n, then partition those.
    const LogitBins bin_of(max_logit, MinLogit(x, max_logit), 1.0f);
    std::array<int32_t, LogitBins::kNumBins> count{};
    for (float v : x) ++count[bin_of(v)];
    int32_t last_bin = 0;
    int32_t taken = count[0];
    while (taken < n) taken += count[++last_bin];
    for (int32_t i = 0; i < vocab; ++i) {
      if (bin_of(x[i]) <= last_bin) candidates_.push_back({x[i], i});
    }
    std::nth_element(candidates_.begin(), candidates_.begin() + (n - 1), candidates_.end(), BetterFirst());
    candidates_.resize(n);
  }
  std::sort(candidates_.begin(), candidates_.end(), BetterFirst());
}

double Sampler::KeepNucleus(std::span<const float> x, float max_logit, float min_logit, float temperature,
                            double target) {
  // Sum the mass per bin; bins before the one where it crosses target are all in, those after it all out, and only
  // that one bin gets sorted.
  const LogitBins bin_of(max_logit, min_logit, temperature);
  std::array<double, LogitBins::kNumBins> bin_mass{};
  for (size_t i = 0; i < x.size(); ++i) bin_mass[bin_of(x[i])] += weights_[i];

  double cum = 0.0;
  for (int32_t bin = 0; bin < LogitBins::kNumBins; ++bin) {
    if (cum + bin_mass[bin] < target) {
      cum += bin_mass[bin];
      continue;
    }
    candidates_.clear();
    for (int32_t i = 0; i < static_cast<int32_t>(x.size()); ++i) {
      if (bin_of(x[i]) == bin) candidates_.push_back({x[i], i});
    }
    std::sort(candidates_.begin(), candidates_.end(), BetterFirst());
    for (const Candidate& c : candidates_) {
      cum += weights_[c.token_id];
      if (cum < target) continue;
      // c is the last token of the nucleus: drop every token ranked after it.
      double kept = 0.0;
      for (int32_t i = 0; i < static_cast<int32_t>(x.size()); ++i) {
        if (BetterFirst()(c, Candidate{x[i], i})) {
          weights_[i] = 0.0f;
        } else {
          kept += weights_[i];
        }
      }
      return kept;
    }
    // Rounding left this bin's sorted sum just short of its binned sum: go on with the next bin.
  }
  double all = 0.0;  // rounding kept the whole vocabulary short of target: keep it all
  for (float w : weights_) all += w;
  return all;
}

int32_t Sampler::Draw(std::span<const float> x, float max_logit, const SamplingParams& params, std::mt19937_64& rng,
                      double* raw_sum) {
  const int32_t vocab = static_cast<int32_t>(x.size());
  const float temperature = params.temperature;
  // Unnormalised probability, <= 1. Divide rather than multiply by 1/T: a denormal T makes 1/T infinite and
  // 0 * inf is NaN. -inf is special-cased for T = +inf (-inf / inf is NaN).
  auto weight = [max_logit, temperature](float v) -> float {
    return v == -kInf ? 0.0f : std::exp((v - max_logit) / temperature);
  };
  const bool use_top_p = params.top_p < 1.0f;

  if (params.top_k > 0 && params.top_k < vocab) {
    // Top-k, then top-p over its renormalised mass: k candidates, sorted best first, drawn in that order.
    SelectTop(x, params.top_k, max_logit);
    const int32_t k = static_cast<int32_t>(candidates_.size());
    weights_.resize(k);
    double mass = 0.0;
    for (int32_t i = 0; i < k; ++i) {
      weights_[i] = weight(candidates_[i].logit);
      mass += weights_[i];
    }
    int32_t keep = k;
    double kept_mass = mass;
    if (use_top_p) {
      const double target = static_cast<double>(params.top_p) * mass;
      double cum = 0.0;
      for (int32_t i = 0; i < k; ++i) {
        cum += weights_[i];
        if (cum >= target) {
          keep = i + 1;
          kept_mass = cum;
          break;
        }
      }
    }
    return candidates_[DrawIndex(std::span<const float>(weights_).first(keep), kept_mass, rng)].token_id;
  }

  // The whole vocabulary (less what top-p drops), drawn in id order: no sort.
  weights_.resize(vocab);
  double mass = 0.0;
  for (int32_t i = 0; i < vocab; ++i) {
    weights_[i] = weight(x[i]);
    mass += weights_[i];
  }
  if (temperature == 1.0f) *raw_sum = mass;
  if (use_top_p) {
    mass = KeepNucleus(x, max_logit, MinLogit(x, max_logit), temperature, static_cast<double>(params.top_p) * mass);
  }
  return DrawIndex(weights_, mass, rng);
}

SampleResult Sampler::Sample(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng) {
  OCTET_CHECK(!logits.empty()) << "empty logits row";
  float max_logit = 0.0f;
  const std::span<const float> x = CleanLogits(logits, &max_logit);

  double raw_sum = -1.0;  // sum(exp(x - max_logit)) at temperature 1; < 0 until computed
  int32_t chosen = 0;
  if (params.temperature > 0.0f) {
    chosen = Draw(x, max_logit, params, rng, &raw_sum);
  } else {  // greedy (also what an unvalidated negative or NaN temperature gets): the first token at the maximum
    chosen = static_cast<int32_t>(std::find(x.begin(), x.end(), max_logit) - x.begin());
  }
  SampleResult result;
  result.token_id = chosen;
  result.logprob = std::numeric_limits<float>::quiet_NaN();
  if (params.logprobs > 0) {
    // Only on request: the sum over the vocabulary costs as much as the rest of a greedy step (~1 ms at 248k).
    if (raw_sum < 0.0) raw_sum = SumExp(x, max_logit);
    const double log_z = static_cast<double>(max_logit) + std::log(raw_sum);
    result.logprob = static_cast<float>(x[chosen] - log_z);
    SelectTop(x, params.logprobs, max_logit);
    result.top.reserve(candidates_.size());
    for (const Candidate& c : candidates_) result.top.push_back({c.token_id, static_cast<float>(c.logit - log_z)});
  }
  return result;
}

SampleResult Sample(std::span<const float> logits, const SamplingParams& params, std::mt19937_64& rng) {
  Sampler sampler;
  return sampler.Sample(logits, params, rng);
}

}  // namespace octet
