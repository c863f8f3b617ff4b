#include "worker/server/worker_metrics.h"

#include <utility>
#include <vector>

#include "prometheus/text_serializer.h"

namespace octet {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Latency buckets in seconds, from a fast decode step to a long request.
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries buckets = {0.001, 0.0025, 0.005, 0.01, 0.02,  0.04, 0.06, 0.08,
                                                      0.1,   0.25,   0.5,   0.75, 1.0,   2.5,  5.0,  7.5,
                                                      10.0,  20.0,   40.0,  80.0, 160.0, 320.0};
  return buckets;
}

// gRPC's name of a status code (absl and gRPC share codes and names): OK, CANCELLED, DEADLINE_EXCEEDED, ...
std::string StatusLabel(absl::StatusCode code) { return absl::StatusCodeToString(code); }

const char* FinishReasonLabel(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
    case FinishReason::kNone:
      break;
  }
  return "none";
}

constexpr auto kThroughputWindow = std::chrono::seconds(10);

}  // namespace

WorkerMetrics::WorkerMetrics(const WorkerMetricsInfo& info)
    : info_(info), registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  running_ = &BuildGauge().Name("octet_requests_running").Help("Requests in the running batch").Register(r).Add({});
  waiting_ = &BuildGauge().Name("octet_requests_waiting").Help("Requests accepted and waiting").Register(r).Add({});
  blocks_total_ = &BuildGauge().Name("octet_kv_cache_blocks").Help("Paged KV cache blocks (all)").Register(r).Add({});
  blocks_used_ =
      &BuildGauge().Name("octet_kv_cache_used_blocks").Help("KV cache blocks held by requests").Register(r).Add({});
  usage_ratio_ = &BuildGauge()
                      .Name("octet_kv_cache_usage_ratio")
                      .Help("Used over total KV cache blocks (0 to 1)")
                      .Register(r)
                      .Add({});
  BuildGauge()
      .Name("octet_kv_cache_block_size_tokens")
      .Help("Tokens per KV cache block")
      .Register(r)
      .Add({})
      .Set(info.block_size);
  auto& memory = BuildGauge()
                     .Name("octet_memory_bytes")
                     .Help("Memory the worker planned, by kind (device memory on a GPU, host memory on the CPU)")
                     .Register(r);
  memory.Add({{"kind", "weights"}}).Set(static_cast<double>(info.memory.weights_bytes));
  memory.Add({{"kind", "kv_cache"}}).Set(static_cast<double>(info.memory.kv_cache_bytes));
  memory.Add({{"kind", "state"}}).Set(static_cast<double>(info.memory.state_bytes));
  memory.Add({{"kind", "workspace"}}).Set(static_cast<double>(info.memory.workspace_bytes));
  device_free_ = &BuildGauge()
                      .Name("octet_device_memory_free_bytes")
                      .Help("Free memory of the device (0 on the CPU)")
                      .Register(r)
                      .Add({{"device", "0"}});
  device_total_ = &BuildGauge()
                       .Name("octet_device_memory_total_bytes")
                       .Help("Total memory of the device (0 on the CPU)")
                       .Register(r)
                       .Add({{"device", "0"}});
  throughput_ = &BuildGauge()
                     .Name("octet_generation_throughput_tokens_per_second")
                     .Help("Generated tokens per second over the last 10 s window")
                     .Register(r)
                     .Add({});
  prompt_tokens_ =
      &BuildCounter().Name("octet_prompt_tokens_total").Help("Prompt tokens computed (prefill)").Register(r).Add({});
  generation_tokens_ =
      &BuildCounter().Name("octet_generation_tokens_total").Help("Tokens generated").Register(r).Add({});
  preemptions_ = &BuildCounter()
                      .Name("octet_preemptions_total")
                      .Help("Sequences preempted (KV freed, recomputed later)")
                      .Register(r)
                      .Add({});
  steps_ = &BuildCounter().Name("octet_engine_steps_total").Help("Engine steps run").Register(r).Add({});
  host_seconds_ = &BuildCounter()
                       .Name("octet_engine_host_seconds_total")
                       .Help(
                           "Engine-thread time of steps outside the model runner (scheduling, bookkeeping, "
                           "detokenization, delivery); with octet_engine_step_seconds_sum, the host's share")
                       .Register(r)
                       .Add({});
  ttft_ = &BuildHistogram()
               .Name("octet_time_to_first_token_seconds")
               .Help("From submission to the first generated token")
               .Register(r)
               .Add({}, LatencyBuckets());
  itl_ = &BuildHistogram()
              .Name("octet_inter_token_latency_seconds")
              .Help("Between consecutive tokens of a request")
              .Register(r)
              .Add({}, LatencyBuckets());
  e2e_ = &BuildHistogram()
              .Name("octet_e2e_request_latency_seconds")
              .Help("From submission to the end of a request")
              .Register(r)
              .Add({}, LatencyBuckets());
  queue_ = &BuildHistogram()
                .Name("octet_request_queue_time_seconds")
                .Help("From submission to the request's first step")
                .Register(r)
                .Add({}, LatencyBuckets());
  batch_size_ = &BuildHistogram()
                     .Name("octet_batch_size")
                     .Help("Sequences per engine step")
                     .Register(r)
                     .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512});
  step_seconds_ = &BuildHistogram()
                       .Name("octet_engine_step_seconds")
                       .Help("Wall time of an engine step")
                       .Register(r)
                       .Add({}, LatencyBuckets());
  blocks_cached_ = &BuildGauge()
                        .Name("octet_kv_cache_cached_blocks")
                        .Help("Free KV cache blocks still holding a cached prefix (reusable until evicted)")
                        .Register(r)
                        .Add({});
  prefix_queries_ = &BuildCounter()
                         .Name("octet_prefix_cache_queries_total")
                         .Help("Tokens looked up in the prefix cache (prompts of admitted requests)")
                         .Register(r)
                         .Add({});
  prefix_hits_ = &BuildCounter()
                      .Name("octet_prefix_cache_hits_total")
                      .Help("Tokens found in the prefix cache (their KV reused, not computed)")
                      .Register(r)
                      .Add({});
  requests_ = &BuildCounter()
                   .Name("octet_requests_total")
                   .Help("Requests accepted and ended, by finish reason and gRPC status")
                   .Register(r);
  // Present at 0 before the first one.
  requests_->Add({{"finish_reason", "stop"}, {"status", "OK"}});
  requests_->Add({{"finish_reason", "length"}, {"status", "OK"}});
  requests_->Add({{"finish_reason", "cancelled"}, {"status", "CANCELLED"}});
  requests_->Add({{"finish_reason", "error"}, {"status", "DEADLINE_EXCEEDED"}});
  requests_->Add({{"finish_reason", "error"}, {"status", "INTERNAL"}});
  rejected_ = &BuildCounter()
                   .Name("octet_requests_rejected_total")
                   .Help("Requests refused before they were queued, by gRPC status")
                   .Register(r);
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnavailable}) {
    rejected_->Add({{"status", StatusLabel(code)}});
  }
  BuildGauge()
      .Name("octet_model_info")
      .Help("The served model (value 1)")
      .Register(r)
      .Add({{"model", info.model_name},
            {"architecture", info.architecture},
            {"weight_dtype", info.weight_dtype},
            {"kv_cache_dtype", info.kv_cache_dtype},
            {"compute_dtype", info.compute_dtype},
            {"backend", info.backend},
            {"tensor_parallel_size", std::to_string(info.tensor_parallel_size)},
            {"prefix_caching", info.prefix_caching ? "true" : "false"}})
      .Set(1);
  if (info.vllm_compat) {
    const prometheus::Labels model = {{"model_name", info.model_name}};
    vllm_running_ =
        &BuildGauge().Name("vllm:num_requests_running").Help("Requests running (vLLM name)").Register(r).Add(model);
    vllm_waiting_ =
        &BuildGauge().Name("vllm:num_requests_waiting").Help("Requests waiting (vLLM name)").Register(r).Add(model);
    vllm_usage_ = &BuildGauge()
                       .Name("vllm:gpu_cache_usage_perc")
                       .Help("KV cache usage, 0 to 1 (vLLM name)")
                       .Register(r)
                       .Add(model);
    vllm_prefix_queries_ = &BuildCounter()
                                .Name("vllm:prefix_cache_queries_total")
                                .Help("Prefix cache queries, in tokens (vLLM name)")
                                .Register(r)
                                .Add(model);
    vllm_prefix_hits_ = &BuildCounter()
                             .Name("vllm:prefix_cache_hits_total")
                             .Help("Prefix cache hits, in tokens (vLLM name)")
                             .Register(r)
                             .Add(model);
    vllm_preemptions_ =
        &BuildCounter().Name("vllm:num_preemptions_total").Help("Preemptions (vLLM name)").Register(r).Add(model);
    BuildGauge()
        .Name("vllm:cache_config_info")
        .Help("KV cache configuration (vLLM name; value 1)")
        .Register(r)
        .Add({{"block_size", std::to_string(info.block_size)},
              {"num_gpu_blocks", std::to_string(info.memory.kv_cache_tokens / std::max(info.block_size, 1))}})
        .Set(1);
  }
  SampleDeviceMemory();
}

std::string WorkerMetrics::Scrape() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

void WorkerMetrics::SampleDeviceMemory() {
  memory_sampled_ = std::chrono::steady_clock::now();
  if (!info_.device_memory) return;
  const DeviceMemory m = info_.device_memory();
  device_free_->Set(static_cast<double>(m.free_bytes));
  device_total_->Set(static_cast<double>(m.total_bytes));
}

void WorkerMetrics::OnStep(int32_t batch_size, int32_t prefill_tokens, int32_t decode_tokens, double seconds) {
  steps_->Increment();
  batch_size_->Observe(batch_size);
  step_seconds_->Observe(seconds);
  prompt_tokens_->Increment(prefill_tokens);
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= kThroughputWindow) {
    throughput_->Set(static_cast<double>(window_tokens_) / std::chrono::duration<double>(now - window_start_).count());
    window_start_ = now;
    window_tokens_ = 0;
  }
  if (now - memory_sampled_ >= std::chrono::seconds(1)) SampleDeviceMemory();
}

void WorkerMetrics::OnScheduled(double queue_seconds) { queue_->Observe(queue_seconds); }

void WorkerMetrics::OnHostTime(double seconds) { host_seconds_->Increment(seconds); }

void WorkerMetrics::OnFirstToken(double seconds) {
  ttft_->Observe(seconds);
  generation_tokens_->Increment();
  ++window_tokens_;
}

void WorkerMetrics::OnNextToken(double seconds) {
  itl_->Observe(seconds);
  generation_tokens_->Increment();
  ++window_tokens_;
}

void WorkerMetrics::OnFinish(FinishReason reason, absl::StatusCode status, int32_t prompt_tokens,
                             int32_t completion_tokens, double seconds) {
  e2e_->Observe(seconds);
  requests_->Add({{"finish_reason", FinishReasonLabel(reason)}, {"status", StatusLabel(status)}}).Increment();
}

void WorkerMetrics::OnRejected(absl::StatusCode status) {
  rejected_->Add({{"status", StatusLabel(status)}}).Increment();  // Family::Add and Counter are thread-safe
}

void WorkerMetrics::OnSnapshot(const EngineSnapshot& s) {
  const int32_t used = s.num_total_blocks - s.num_free_blocks;
  const double usage = s.num_total_blocks > 0 ? static_cast<double>(used) / s.num_total_blocks : 0.0;
  running_->Set(s.num_running);
  waiting_->Set(s.num_waiting);
  blocks_total_->Set(s.num_total_blocks);
  blocks_used_->Set(used);
  usage_ratio_->Set(usage);
  blocks_cached_->Set(s.num_cached_free_blocks);
  const auto delta = [](int64_t now, int64_t& seen) {  // counters from the engine's running totals
    const double d = static_cast<double>(now - seen);
    seen = now;
    return d;
  };
  const double preempted = delta(s.num_preemptions, preemptions_seen_);
  const double queried = delta(s.prefix_query_tokens, prefix_queries_seen_);
  const double hit = delta(s.prefix_hit_tokens, prefix_hits_seen_);
  preemptions_->Increment(preempted);
  prefix_queries_->Increment(queried);
  prefix_hits_->Increment(hit);
  if (vllm_preemptions_) {
    vllm_preemptions_->Increment(preempted);
    vllm_prefix_queries_->Increment(queried);
    vllm_prefix_hits_->Increment(hit);
  }
  if (vllm_running_) {
    vllm_running_->Set(s.num_running);
    vllm_waiting_->Set(s.num_waiting);
    vllm_usage_->Set(usage);
  }
}

}  // namespace octet
