#include "client/bench/bench_stats.h"

#include <algorithm>
#include <cmath>

namespace octet::bench {

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = rank - static_cast<double>(below);
  return values[below] + (values[above] - values[below]) * fraction;
}

Distribution Summarize(const std::vector<double>& values) {
  Distribution d;
  if (values.empty()) return d;
  double sum = 0.0;
  for (double v : values) sum += v;
  d.mean = sum / static_cast<double>(values.size());
  double squares = 0.0;
  for (double v : values) squares += (v - d.mean) * (v - d.mean);
  d.std = std::sqrt(squares / static_cast<double>(values.size()));
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  d.median = Percentile(sorted, 50);
  d.p90 = Percentile(sorted, 90);
  d.p99 = Percentile(sorted, 99);
  return d;
}

std::optional<double> TimePerOutputToken(double e2e_s, double ttft_s, int32_t output_tokens) {
  if (output_tokens < 2) return std::nullopt;
  return (e2e_s - ttft_s) / static_cast<double>(output_tokens - 1);
}

BenchMetrics ComputeMetrics(const std::vector<RequestResult>& requests, double duration_s) {
  BenchMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts;
  std::vector<double> tpots;
  std::vector<double> itls;
  std::vector<double> e2els;
  constexpr double kMs = 1000.0;
  for (const RequestResult& r : requests) {
    if (!r.status.ok()) {
      ++m.failed;
      ++m.failed_by_code[absl::StatusCodeToString(r.status.code())];
      continue;
    }
    ++m.completed;
    m.total_input_tokens += r.prompt_tokens;
    m.total_output_tokens += r.output_tokens;
    ttfts.push_back(r.ttft_s * kMs);
    e2els.push_back(r.e2e_s * kMs);
    if (std::optional<double> tpot = TimePerOutputToken(r.e2e_s, r.ttft_s, r.output_tokens)) {
      tpots.push_back(*tpot * kMs);
    }
    for (double itl : r.itls_s) itls.push_back(itl * kMs);
  }
  if (duration_s > 0.0) {
    m.request_throughput = m.completed / duration_s;
    m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
  }
  m.ttft_ms = Summarize(ttfts);
  m.tpot_ms = Summarize(tpots);
  m.itl_ms = Summarize(itls);
  m.e2el_ms = Summarize(e2els);
  return m;
}

}  // namespace octet::bench
