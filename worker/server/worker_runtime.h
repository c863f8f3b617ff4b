// WorkerRuntime: everything a worker serves with — backend, tokenizer, model, KV cache, model runner, engine —
// built from the command-line options, warmed up, and described for the services.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/metrics_http_server.h"
#include "worker/engine/engine.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/runtime/backend.h"
#include "worker/server/served_model.h"
#include "worker/server/worker_metrics.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {

struct WorkerOptions {
  std::string model_dir;  // a Hugging Face folder, or synthetic:<preset> (worker/model/synthetic_weights.h)
  std::string tokenizer;  // tokenizer.json; empty = model_dir/tokenizer.json (a synthetic model needs it set)
  std::string served_model_name;
  int32_t max_model_len = 0;  // 0 = the model's max_position_embeddings
  int32_t block_size = 16;
  std::string device = "auto";  // CreateBackend (worker/runtime/backend_factory.h)
  int32_t num_kv_blocks = 0;    // 0 = from kv_cache_memory_bytes
  // 0 = on a GPU, what gpu_memory_utilization leaves after weights, state and workspace; on the CPU, 1 GiB.
  int64_t kv_cache_memory_bytes = 0;
  double gpu_memory_utilization = 0.9;    // fraction of the GPU's memory the worker may plan for
  bool enforce_eager = false;             // no CUDA graphs for decode steps
  int32_t cuda_graph_max_context = 8192;  // decode steps with longer contexts run eagerly
  int32_t cuda_graph_max_batch = 256;     // decode steps of more sequences run eagerly
  // Reuse cached prompt prefixes' KV blocks; attention-only models only (a hybrid model serves without).
  bool enable_prefix_caching = true;
  int32_t max_queued_requests = 1024;  // waiting requests beyond which new ones get RESOURCE_EXHAUSTED (0 = no bound)
  int32_t metrics_port = 0;            // Prometheus /metrics (0 = none)
  std::string metrics_host = "0.0.0.0";
  bool metrics_vllm_compat = false;  // also export vLLM's names for the gauges gateways read
  Fp8Recipe fp8_recipe = Fp8Recipe::kOfficial;
  DType kv_cache_dtype = DType::kF8E4M3;
  SchedulerConfig scheduler;
};

class WorkerRuntime {
 public:
  // Loads, allocates, starts the engine and runs one warm-up request through it.
  static absl::StatusOr<std::unique_ptr<WorkerRuntime>> Create(const WorkerOptions& options);
  ~WorkerRuntime();

  // Fills `served` and marks it ready.
  void Publish(ServedModel& served) const;
  Engine& engine() { return *engine_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  WorkerRuntime() = default;
  absl::Status WarmUp();

  WorkerOptions options_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Tokenizer> tokenizer_;
  LoadedModel loaded_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<WorkerMetrics> metrics_;  // before engine_: the engine reports to it until it stops
  std::unique_ptr<MetricsHttpServer> metrics_server_;
  std::unique_ptr<Engine> engine_;
  RequestLimits limits_;
  v1::ModelInfo info_;
};

}  // namespace octet
