// `octet bench`'s load generator: sends prompts to a Generation server on a schedule, at most C at a time, and
// times every streamed message on the client.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/bench/bench_stats.h"
#include "client/bench/workload.h"

namespace octet::bench {

// How the load is applied.
struct LoadOptions {
  // Requests a second on average, Poisson arrivals; infinity sends them all at once.
  double request_rate = std::numeric_limits<double>::infinity();
  int32_t max_concurrency = 0;  // most requests in flight at once; 0: no cap
  int32_t warmup = 1;           // requests sent (with the same cap) and finished before the measured ones
  float temperature = 0.0f;
  uint64_t seed = 0;                                  // of the arrival times
  absl::Duration timeout = absl::InfiniteDuration();  // each call's deadline
};

// InvalidArgument naming the flag for a rate that is not > 0, or a negative cap or warm-up count.
absl::Status ValidateLoad(const LoadOptions& options);

struct BenchRun {
  std::vector<RequestResult> requests;  // the measured ones, in the order they were sent
  double duration_s = 0.0;
};

// Called on the thread that runs the benchmark (never from gRPC's threads), often while it waits: requests
// finished of the measured total.
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

// Sends prompts[0, warmup) and waits for them, then sends the rest on the schedule of load.request_rate, holding
// each back while max_concurrency requests are in flight. Every request sets ignore_eos, max_tokens and the
// temperature. Fails (with the first failure's code) only when a warm-up request fails; failures of measured
// requests are in their RequestResult.
absl::StatusOr<BenchRun> RunServingBench(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::vector<BenchPrompt>& prompts, const LoadOptions& load,
                                         const ProgressCallback& progress = nullptr);

}  // namespace octet::bench
