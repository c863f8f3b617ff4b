// What one benchmark request measured, and the summary `octet bench` reports over all of them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace octet::bench {

// One request as the client saw it; times in seconds on std::chrono::steady_clock.
struct RequestResult {
  absl::Status status;         // the call's status, or why a finished call is not counted (e.g. usage mismatch)
  int32_t prompt_tokens = 0;   // usage.prompt_tokens (the prompt's length when the call failed before usage came)
  int32_t output_tokens = 0;   // usage.completion_tokens (equal to the streamed token ids when status is OK)
  double ttft_s = 0.0;         // start to the first message carrying a token
  double e2e_s = 0.0;          // start to the end of the call
  std::vector<double> itls_s;  // gaps between consecutive messages carrying tokens (one per message, not token)
};

// Mean, median, p90 and p99 of a set of values (all 0 when it is empty).
struct Distribution {
  double mean = 0.0;
  double std = 0.0;  // population standard deviation, as numpy's default
  double median = 0.0;
  double p90 = 0.0;
  double p99 = 0.0;
};

// The p-th percentile (p in [0, 100]) of `values` with linear interpolation between the closest ranks, as
// numpy.percentile's default; 0 for no values.
double Percentile(std::vector<double> values, double p);
Distribution Summarize(const std::vector<double>& values);

// Time per output token after the first: (e2e - ttft) / (output_tokens - 1); nullopt with fewer than 2 tokens.
std::optional<double> TimePerOutputToken(double e2e_s, double ttft_s, int32_t output_tokens);

// The benchmark's results over its measured requests; latencies in milliseconds.
struct BenchMetrics {
  double duration_s = 0.0;  // wall time from the first measured request's start to the last one's end
  int32_t completed = 0;
  int32_t failed = 0;
  std::map<std::string, int32_t> failed_by_code;  // canonical code name ("UNAVAILABLE") -> requests
  int64_t total_input_tokens = 0;                 // of completed requests
  int64_t total_output_tokens = 0;
  double request_throughput = 0.0;  // completed / duration
  double output_throughput = 0.0;   // total_output_tokens / duration
  double total_token_throughput = 0.0;
  Distribution ttft_ms;
  Distribution tpot_ms;
  Distribution itl_ms;
  Distribution e2el_ms;
};

// Only completed (OK) requests enter token counts and latencies; the others are counted by code.
BenchMetrics ComputeMetrics(const std::vector<RequestResult>& requests, double duration_s);

}  // namespace octet::bench
