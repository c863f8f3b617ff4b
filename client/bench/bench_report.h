// What `octet bench` shows of its results: a text table in the layout of vLLM's benchmark_serving, and JSON.
#pragma once

#include <string>
#include <vector>

#include "client/bench/bench_stats.h"
#include "client/bench/serving_bench.h"
#include "client/bench/workload.h"

#include <nlohmann/json.hpp>

namespace octet::bench {

// The run's setting, echoed in the table and the JSON.
struct BenchContext {
  std::string address;
  std::string model_name;  // from GetModelInfo
  std::string backend;
  std::string date;  // UTC, ISO 8601
  WorkloadOptions workload;
  LoadOptions load;
};

// The table: the setting, request and token counts, failures by code, throughputs, then mean, median, p90 and
// p99 of TTFT, TPOT, ITL and end-to-end latency in milliseconds.
std::string FormatTable(const BenchContext& context, const BenchMetrics& metrics);

// One flat object: the setting (address, model_name, backend, date, num_prompts, input_len, output_len,
// random_range_ratio, shared_prefix_len, seed, request_rate ("inf" when unlimited), max_concurrency (null when
// uncapped), warmup, temperature), the totals (duration in seconds, completed, failed, failed_by_code,
// total_input_tokens, total_output_tokens, request_throughput, output_throughput, total_token_throughput), for X in
// ttft, tpot, itl, e2el: mean_X_ms, std_X_ms, median_X_ms, p90_X_ms, p99_X_ms; and per measured request, in the
// order sent: input_lens, output_lens, ttfts_ms, e2els_ms, itls_ms (a list per request) and errors ("" when it
// completed, else "CODE: message").
nlohmann::json ReportJson(const BenchContext& context, const BenchMetrics& metrics,
                          const std::vector<RequestResult>& requests);

}  // namespace octet::bench
