#include "worker/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/log.h"

namespace octet::eval {

double Metrics::MeanNll() const {
  return num_positions > 0 ? nll_sum / static_cast<double>(num_positions) : std::numeric_limits<double>::quiet_NaN();
}

double Metrics::Perplexity() const { return std::exp(MeanNll()); }

double Metrics::MeanKl() const {
  return num_positions > 0 ? kl_sum / static_cast<double>(num_positions) : std::numeric_limits<double>::quiet_NaN();
}

double Metrics::Top1Agreement() const {
  return num_positions > 0 ? static_cast<double>(top1_matches) / static_cast<double>(num_positions)
                           : std::numeric_limits<double>::quiet_NaN();
}

void Metrics::Merge(const Metrics& other) {
  num_positions += other.num_positions;
  nll_sum += other.nll_sum;
  kl_sum += other.kl_sum;
  top1_matches += other.top1_matches;
}

double LogSumExp(absl::Span<const float> row) {
  OCTET_CHECK(!row.empty());
  double max = row[0];
  for (float x : row) max = std::max<double>(max, x);
  if (!std::isfinite(max)) return max;  // NaN or +inf propagate; an all -inf row has no distribution
  double sum = 0;
  for (float x : row) sum += std::exp(static_cast<double>(x) - max);
  return max + std::log(sum);
}

int32_t Argmax(absl::Span<const float> row) {
  OCTET_CHECK(!row.empty());
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

double KlDivergence(absl::Span<const float> p_logits, absl::Span<const float> q_logits) {
  OCTET_CHECK(p_logits.size() == q_logits.size()) << p_logits.size() << " vs " << q_logits.size();
  const double lse_p = LogSumExp(p_logits);
  const double lse_q = LogSumExp(q_logits);
  double kl = 0;
  for (size_t v = 0; v < p_logits.size(); ++v) {
    const double log_p = p_logits[v] - lse_p;
    const double log_q = q_logits[v] - lse_q;
    const double p = std::exp(log_p);
    if (p > 0) kl += p * (log_p - log_q);  // 0 * log(0 / q) = 0, even where q = 0
  }
  return kl;
}

void AccumulateWindow(absl::Span<const float> baseline, absl::Span<const float> logits,
                      absl::Span<const int32_t> targets, int32_t vocab, Metrics& metrics) {
  const size_t v = static_cast<size_t>(vocab);
  OCTET_CHECK(baseline.size() >= targets.size() * v && logits.size() >= targets.size() * v)
      << "logits for " << targets.size() << " positions of vocab " << vocab << " expected";
  const bool self = baseline.data() == logits.data();
  for (size_t i = 0; i < targets.size(); ++i) {
    OCTET_CHECK(targets[i] >= 0 && targets[i] < vocab) << "token " << targets[i] << " outside the vocabulary";
    const absl::Span<const float> row = logits.subspan(i * v, v);
    metrics.nll_sum += LogSumExp(row) - row[static_cast<size_t>(targets[i])];
    if (self) {
      ++metrics.top1_matches;
    } else {
      const absl::Span<const float> base = baseline.subspan(i * v, v);
      metrics.kl_sum += KlDivergence(base, row);
      if (Argmax(base) == Argmax(row)) ++metrics.top1_matches;
    }
    ++metrics.num_positions;
  }
}

}  // namespace octet::eval
