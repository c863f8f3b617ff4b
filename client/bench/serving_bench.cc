#include "client/bench/serving_bench.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/bench/arrivals.h"
#include "client/client.h"
#include "octet/v1/generation.grpc.pb.h"

namespace octet::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// How often a waiting benchmark thread reports progress when nothing finishes.
constexpr auto kProgressInterval = std::chrono::milliseconds(200);

// Counts the calls of one phase; reactions only lock, count and notify.
class CallTracker {
 public:
  void Started() {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }

  void Finished(Clock::time_point end) {
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      ++finished_;
      last_end_ = std::max(last_end_, end);
    }
    cv_.notify_all();
  }

  // Waits until `not_before` has passed and ready(in_flight, finished) holds, calling progress(finished, total)
  // (without the lock) on every wake-up and at least every kProgressInterval.
  template <typename Ready>
  void Wait(Clock::time_point not_before, Ready ready, const ProgressCallback& progress, int64_t total) {
    std::unique_lock lock(mu_);
    while (true) {
      if (progress) {
        const int64_t finished = finished_;
        lock.unlock();
        progress(finished, total);
        lock.lock();
      }
      const Clock::time_point now = Clock::now();
      if (now >= not_before && ready(in_flight_, finished_)) return;
      cv_.wait_until(lock, now < not_before ? std::min(not_before, now + kProgressInterval) : now + kProgressInterval);
    }
  }

  Clock::time_point last_end() {
    std::lock_guard lock(mu_);
    return last_end_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t in_flight_ = 0;
  int64_t finished_ = 0;
  Clock::time_point last_end_;
};

// One streaming Generate call: times its messages into *result, then tells the tracker and deletes itself.
class GenerateCall final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  static void Start(v1::Generation::Stub& stub, v1::GenerateRequest request, absl::Duration timeout,
                    RequestResult* result, CallTracker& tracker) {
    auto* call = new GenerateCall(std::move(request), result, tracker);
    if (timeout != absl::InfiniteDuration()) {
      call->context_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
    }
    tracker.Started();
    stub.async()->Generate(&call->context_, &call->request_, call);
    call->StartRead(&call->response_);
    call->start_ = Clock::now();
    call->StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    const Clock::time_point now = Clock::now();
    if (const int tokens = response_.token_ids_size(); tokens > 0) {
      if (streamed_tokens_ == 0) {
        result_->ttft_s = Seconds(now - start_);
      } else {
        result_->itls_s.push_back(Seconds(now - last_token_));
      }
      last_token_ = now;
      streamed_tokens_ += tokens;
    }
    if (response_.has_usage()) {
      has_usage_ = true;
      usage_ = response_.usage();
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    const Clock::time_point end = Clock::now();
    result_->e2e_s = Seconds(end - start_);
    result_->prompt_tokens = has_usage_ ? usage_.prompt_tokens() : request_.prompt_token_ids().ids_size();
    result_->output_tokens = has_usage_ ? usage_.completion_tokens() : streamed_tokens_;
    if (!status.ok()) {
      result_->status = client::FromGrpcStatus(status);
    } else if (!has_usage_) {
      result_->status = absl::InternalError("the stream ended without usage");
    } else if (usage_.completion_tokens() != streamed_tokens_) {
      result_->status = absl::InternalError(absl::StrCat("usage.completion_tokens = ", usage_.completion_tokens(),
                                                         " but ", streamed_tokens_, " token ids were streamed"));
    } else if (streamed_tokens_ == 0) {
      result_->status = absl::InternalError("the stream carried no token");
    }
    CallTracker& tracker = tracker_;
    delete this;  // before telling the tracker: the benchmark may return once every call has finished
    tracker.Finished(end);
  }

 private:
  GenerateCall(v1::GenerateRequest request, RequestResult* result, CallTracker& tracker)
      : request_(std::move(request)), result_(result), tracker_(tracker) {}

  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse response_;
  RequestResult* result_;
  CallTracker& tracker_;
  Clock::time_point start_;
  Clock::time_point last_token_;
  int32_t streamed_tokens_ = 0;
  bool has_usage_ = false;
  v1::Usage usage_;
};

v1::GenerateRequest MakeRequest(const BenchPrompt& prompt, float temperature) {
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->mutable_ids()->Add(prompt.token_ids.begin(), prompt.token_ids.end());
  v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_max_tokens(prompt.max_tokens);
  sampling->set_temperature(temperature);
  sampling->set_ignore_eos(true);
  return request;
}

// Sends requests[i] at start + offsets[i] (or later, while max_concurrency calls are in flight) and waits for all
// of them. Returns when the last one ended.
Clock::time_point RunPhase(v1::Generation::Stub& stub, std::vector<v1::GenerateRequest> requests,
                           const std::vector<double>& offsets, Clock::time_point start, const LoadOptions& load,
                           std::vector<RequestResult>& results, const ProgressCallback& progress) {
  CallTracker tracker;
  const int64_t total = static_cast<int64_t>(requests.size());
  const int64_t cap = load.max_concurrency > 0 ? load.max_concurrency : total;
  const auto slot_free = [cap](int64_t in_flight, int64_t /*finished*/) { return in_flight < cap; };
  const auto all_finished = [total](int64_t /*in_flight*/, int64_t finished) { return finished == total; };
  results.assign(requests.size(), RequestResult{});
  for (size_t i = 0; i < requests.size(); ++i) {
    const Clock::time_point at =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offsets[i]));
    tracker.Wait(at, slot_free, progress, total);
    GenerateCall::Start(stub, std::move(requests[i]), load.timeout, &results[i], tracker);
  }
  tracker.Wait(start, all_finished, progress, total);
  return tracker.last_end();
}

}  // namespace

absl::Status ValidateLoad(const LoadOptions& options) {
  if (!(options.request_rate > 0.0)) {  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat("--request-rate must be > 0 (inf: all at once), got ", options.request_rate));
  }
  if (options.max_concurrency < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-concurrency must be >= 0 (0: no cap), got ", options.max_concurrency));
  }
  if (options.warmup < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--warmup must be >= 0, got ", options.warmup));
  }
  return absl::OkStatus();
}

absl::StatusOr<BenchRun> RunServingBench(const std::shared_ptr<grpc::Channel>& channel,
                                         const std::vector<BenchPrompt>& prompts, const LoadOptions& load,
                                         const ProgressCallback& progress) {
  std::unique_ptr<v1::Generation::Stub> stub = v1::Generation::NewStub(channel);
  const size_t warmup = std::min(static_cast<size_t>(std::max(load.warmup, 0)), prompts.size());
  std::vector<v1::GenerateRequest> warmup_requests;
  std::vector<v1::GenerateRequest> measured_requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    (i < warmup ? warmup_requests : measured_requests).push_back(MakeRequest(prompts[i], load.temperature));
  }

  if (!warmup_requests.empty()) {
    std::vector<RequestResult> results;
    RunPhase(*stub, std::move(warmup_requests), std::vector<double>(warmup, 0.0), Clock::now(), load, results, nullptr);
    for (const RequestResult& r : results) {
      if (!r.status.ok()) {
        return absl::Status(r.status.code(), absl::StrCat("warm-up request failed: ", r.status.message()));
      }
    }
  }

  BenchRun run;
  const std::vector<double> offsets =
      ArrivalOffsets(static_cast<int32_t>(measured_requests.size()), load.request_rate, load.seed);
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      RunPhase(*stub, std::move(measured_requests), offsets, start, load, run.requests, progress);
  run.duration_s = run.requests.empty() ? 0.0 : Seconds(end - start);
  return run;
}

}  // namespace octet::bench
