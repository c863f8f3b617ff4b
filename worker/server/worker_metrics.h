// WorkerMetrics: the worker's Prometheus metrics (prometheus-cpp), `octet_*` names in base units, fed by the engine
// (EngineObserver) and the memory plan, scraped at --metrics-port /metrics. With vLLM compatibility on, the gauges
// that inference gateways and autoscalers read are also exported under vLLM's names.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "worker/engine/engine_observer.h"
#include "worker/runtime/backend.h"
#include "worker/server/memory_plan.h"

namespace octet {

struct WorkerMetricsInfo {
  std::string model_name;
  std::string architecture;
  std::string weight_dtype;
  std::string kv_cache_dtype;
  std::string compute_dtype;
  std::string backend;
  int32_t tensor_parallel_size = 1;
  int32_t block_size = 16;
  bool prefix_caching = false;
  bool vllm_compat = false;
  MemoryPlan memory;
  // The device's free and total memory (zeros on the CPU); sampled at most once a second.
  std::function<DeviceMemory()> device_memory;
};

class WorkerMetrics final : public EngineObserver {
 public:
  explicit WorkerMetrics(const WorkerMetricsInfo& info);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The text exposition of every metric (what /metrics serves).
  std::string Scrape() const;

  void OnStep(int32_t batch_size, int32_t prefill_tokens, int32_t decode_tokens, double seconds) override;
  void OnScheduled(double queue_seconds) override;
  void OnHostTime(double seconds) override;
  void OnFirstToken(double seconds) override;
  void OnNextToken(double seconds) override;
  void OnFinish(FinishReason reason, absl::StatusCode status, int32_t prompt_tokens, int32_t completion_tokens,
                double seconds) override;
  void OnRejected(absl::StatusCode status) override;  // thread-safe
  void OnSnapshot(const EngineSnapshot& snapshot) override;

 private:
  void SampleDeviceMemory();

  WorkerMetricsInfo info_;
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* blocks_total_;
  prometheus::Gauge* blocks_used_;
  prometheus::Gauge* usage_ratio_;
  prometheus::Gauge* device_free_;
  prometheus::Gauge* device_total_;
  prometheus::Gauge* throughput_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* steps_;
  prometheus::Counter* host_seconds_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* itl_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* queue_;
  prometheus::Histogram* batch_size_;
  prometheus::Histogram* step_seconds_;
  prometheus::Gauge* blocks_cached_;
  prometheus::Counter* prefix_queries_;
  prometheus::Counter* prefix_hits_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* rejected_;
  // vLLM-named gauges (null unless vllm_compat).
  prometheus::Gauge* vllm_running_ = nullptr;
  prometheus::Gauge* vllm_waiting_ = nullptr;
  prometheus::Gauge* vllm_usage_ = nullptr;
  prometheus::Counter* vllm_prefix_queries_ = nullptr;
  prometheus::Counter* vllm_prefix_hits_ = nullptr;
  prometheus::Counter* vllm_preemptions_ = nullptr;

  int64_t preemptions_seen_ = 0;                          // engine thread only
  int64_t prefix_queries_seen_ = 0;                       // engine thread only
  int64_t prefix_hits_seen_ = 0;                          // engine thread only
  std::chrono::steady_clock::time_point memory_sampled_;  // engine thread only
  // Generated tokens over the last window, for the throughput gauge (engine thread only).
  std::chrono::steady_clock::time_point window_start_ = std::chrono::steady_clock::now();
  int64_t window_tokens_ = 0;
};

}  // namespace octet
