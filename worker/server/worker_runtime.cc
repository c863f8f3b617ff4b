#include "worker/server/worker_runtime.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/metrics_http_server.h"
#include "base/status_macros.h"
#include "worker/model/synthetic_weights.h"
#include "worker/runtime/backend_factory.h"
#include "worker/server/memory_plan.h"
#include "worker/server/worker_metrics.h"

namespace octet {
namespace {

// Collects one request's outputs and signals when it finishes (used for warm-up).
class WaitSink final : public OutputSink {
 public:
  void Deliver(GenerationOutput output) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (output.finish_reason != FinishReason::kNone) {
      finish_ = output.finish_reason;
      cv_.notify_all();
    }
  }
  FinishReason Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return finish_ != FinishReason::kNone; });
    return finish_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  FinishReason finish_ = FinishReason::kNone;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerRuntime>> WorkerRuntime::Create(const WorkerOptions& options) {
  auto rt = std::unique_ptr<WorkerRuntime>(new WorkerRuntime());
  rt->options_ = options;
  if (options.block_size <= 0) return absl::InvalidArgumentError("--block_size must be >= 1");
  if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0)) {
    return absl::InvalidArgumentError("--gpu-memory-utilization must be in (0, 1]");
  }
  OCTET_ASSIGN_OR_RETURN(rt->backend_, CreateBackend(options.device));

  const bool synthetic = absl::StartsWith(options.model_dir, kSyntheticPrefix);
  if (synthetic && options.tokenizer.empty()) {
    return absl::InvalidArgumentError("a synthetic model has no tokenizer.json: pass --tokenizer FILE");
  }
  OCTET_ASSIGN_OR_RETURN(
      rt->tokenizer_,
      Tokenizer::FromFile(options.tokenizer.empty() ? options.model_dir + "/tokenizer.json" : options.tokenizer));
  OCTET_ASSIGN_OR_RETURN(rt->loaded_,
                         LoadModel(options.model_dir, *rt->backend_, LoadOptions{.recipe = options.fp8_recipe}));
  const ModelConfig& config = rt->loaded_.config;
  Model& model = *rt->loaded_.model;
  if (rt->tokenizer_->vocab_size() > model.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json has ", rt->tokenizer_->vocab_size(),
                                                   " tokens but the model's vocabulary is ", model.vocab_size()));
  }

  int32_t max_model_len = static_cast<int32_t>(config.max_position_embeddings);
  if (options.max_model_len > 0) max_model_len = std::min(max_model_len, options.max_model_len);
  if (max_model_len <= 1) return absl::InvalidArgumentError("the context length must be at least 2 tokens");

  // Memory plan: weights are loaded; the recurrent state (one slot per sequence that may run at once) and one step's
  // activations are reserved; the KV pool takes what the budget leaves, but no more than max_num_seqs full contexts.
  const KvCacheSpec spec = model.kv_cache_spec();
  const int32_t bs = options.block_size;
  const int32_t num_state_slots = spec.num_recurrent_layers > 0 ? options.scheduler.max_num_seqs : 0;
  // Decode graphs pad their batches with rows whose recurrent state needs a slot of its own.
  const bool graphs = !options.enforce_eager && rt->backend_->device() == Device::kCuda;
  const int32_t allocated_state_slots = num_state_slots > 0 && graphs ? num_state_slots + 1 : num_state_slots;
  const DType state_dtype = rt->backend_->compute_dtype();
  MemoryPlan plan;
  plan.weights_bytes = rt->loaded_.weight_stats.fp8_bytes + rt->loaded_.weight_stats.other_bytes;
  plan.state_bytes = int64_t{allocated_state_slots} * spec.BytesPerStateSlot(state_dtype);
  plan.workspace_bytes = EstimateWorkspaceBytes(config, options.scheduler);
  const DeviceMemory device_memory = rt->backend_->MemoryInfo();
  plan.device_total_bytes = device_memory.total_bytes;
  int64_t kv_budget = options.kv_cache_memory_bytes;
  if (kv_budget <= 0 && device_memory.total_bytes > 0) {
    const int64_t used = device_memory.total_bytes - device_memory.free_bytes;  // weights and the CUDA context
    kv_budget = static_cast<int64_t>(options.gpu_memory_utilization * static_cast<double>(device_memory.total_bytes)) -
                used - plan.state_bytes - plan.workspace_bytes;
    if (kv_budget <= 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "no GPU memory is left for the KV cache: ", used >> 20, " MiB in use after loading, ", plan.state_bytes >> 20,
          " MiB of recurrent state and ", plan.workspace_bytes >> 20, " MiB of workspace, of ",
          device_memory.total_bytes >> 20, " MiB x --gpu-memory-utilization ", options.gpu_memory_utilization));
    }
  } else if (kv_budget <= 0) {
    kv_budget = int64_t{1} << 30;
  }
  int64_t num_blocks = options.num_kv_blocks;
  if (num_blocks <= 0) {
    const int64_t bytes_per_block = spec.BytesPerToken(options.kv_cache_dtype) * bs;
    const int64_t needed = int64_t{options.scheduler.max_num_seqs} * ((max_model_len + bs - 1) / bs);
    num_blocks = std::min(kv_budget / std::max<int64_t>(bytes_per_block, 1), needed);
    kv_budget = std::min(kv_budget, needed * bytes_per_block);
  } else {
    kv_budget = num_blocks * bs * spec.BytesPerToken(options.kv_cache_dtype);
  }
  if (num_blocks < 1) return absl::ResourceExhaustedError("the KV cache budget does not hold a single block");
  plan.kv_cache_bytes = num_blocks * bs * spec.BytesPerToken(options.kv_cache_dtype);
  plan.kv_cache_tokens = num_blocks * bs;
  // The same bytes with the other cache dtype: FP8 KV's point is that it holds about twice the tokens of bf16.
  plan.kv_cache_tokens_fp8 = kv_budget / std::max<int64_t>(spec.BytesPerToken(DType::kF8E4M3) * bs, 1) * bs;
  plan.kv_cache_tokens_bf16 = kv_budget / std::max<int64_t>(spec.BytesPerToken(DType::kBF16) * bs, 1) * bs;
  // A sequence can never hold more tokens than the whole cache.
  max_model_len = static_cast<int32_t>(std::min<int64_t>(max_model_len, num_blocks * bs));

  rt->runner_ = std::make_unique<ModelRunner>(model, *rt->backend_,
                                              AllocateKvCache(*rt->backend_, spec, static_cast<int32_t>(num_blocks), bs,
                                                              allocated_state_slots, options.kv_cache_dtype));
  if (graphs) {
    DecodeGraphsConfig graph_config;
    graph_config.max_batch = std::max(1, std::min(options.scheduler.max_num_seqs, options.cuda_graph_max_batch));
    graph_config.max_context_len = std::min(max_model_len, std::max(options.cuda_graph_max_context, 1));
    graph_config.padding_state_slot = allocated_state_slots > num_state_slots ? num_state_slots : -1;
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> sizes = rt->runner_->CaptureDecodeGraphs(graph_config);
    OCTET_LOG(INFO, "worker") << "captured " << sizes.size() << " decode graphs (batch " << absl::StrJoin(sizes, ", ")
                              << "; contexts up to " << graph_config.max_context_len << ") in "
                              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                              << " s";
  }
  EngineConfig engine_config;
  engine_config.scheduler = options.scheduler;
  engine_config.num_kv_blocks = static_cast<int32_t>(num_blocks);
  engine_config.block_size = bs;
  engine_config.max_model_len = max_model_len;
  engine_config.num_state_slots = num_state_slots;
  engine_config.eos_token_ids = config.eos_token_ids;
  engine_config.max_queued_requests = options.max_queued_requests;
  engine_config.enable_prefix_caching = options.enable_prefix_caching && num_state_slots == 0;
  if (options.enable_prefix_caching && num_state_slots > 0) {
    OCTET_LOG(INFO, "worker") << "prefix caching is off for this hybrid model: its " << spec.num_recurrent_layers
                              << " recurrent layers keep one running state per sequence, not one per KV block, so a "
                                 "cached prefix could not resume them";
  }
  rt->engine_ = std::make_unique<Engine>(engine_config, *rt->runner_, *rt->tokenizer_);

  rt->limits_.vocab_size = model.vocab_size();
  rt->limits_.max_model_len = max_model_len;
  v1::ModelInfo& info = rt->info_;
  info.set_model_name(options.served_model_name);
  info.set_architecture(config.model_type);
  info.set_context_length(max_model_len);
  const WeightStats& ws = rt->loaded_.weight_stats;
  const std::string source_dtype = config.dtype ? std::string(DTypeName(*config.dtype)) : "unknown";
  info.set_weight_dtype(ws.fp8_layers == 0
                            ? source_dtype
                            : absl::StrCat("fp8_e4m3 (recipe ", std::string(Fp8RecipeName(options.fp8_recipe)), ": ",
                                           ws.fp8_layers, " of ", ws.fp8_layers + ws.other_layers,
                                           " linear layers; the rest ", source_dtype, ")"));
  info.set_compute_dtype(std::string(DTypeName(rt->backend_->compute_dtype())));
  info.set_kv_cache_dtype(std::string(DTypeName(options.kv_cache_dtype)));
  info.set_vocab_size(model.vocab_size());
  info.set_backend(std::string(rt->backend_->name()));
  info.set_prefix_caching(engine_config.enable_prefix_caching);
  *info.mutable_memory() = plan.ToProto();

  if (options.metrics_port > 0) {
    WorkerMetricsInfo mi;
    mi.model_name = options.served_model_name;
    mi.architecture = config.model_type;
    mi.weight_dtype = info.weight_dtype();
    mi.kv_cache_dtype = info.kv_cache_dtype();
    mi.compute_dtype = info.compute_dtype();
    mi.backend = info.backend();
    mi.block_size = bs;
    mi.prefix_caching = engine_config.enable_prefix_caching;
    mi.vllm_compat = options.metrics_vllm_compat;
    mi.memory = plan;
    Backend* backend = rt->backend_.get();
    mi.device_memory = [backend] { return backend->MemoryInfo(); };
    rt->metrics_ = std::make_unique<WorkerMetrics>(mi);
    WorkerMetrics* metrics = rt->metrics_.get();
    OCTET_ASSIGN_OR_RETURN(rt->metrics_server_, MetricsHttpServer::Start(options.metrics_host, options.metrics_port,
                                                                         [metrics] { return metrics->Scrape(); }));
    const std::string address = absl::StrCat(options.metrics_host, ":", rt->metrics_server_->port());
    rt->engine_->set_observer(rt->metrics_.get());
    OCTET_LOG(INFO, "worker") << "metrics on http://" << address << "/metrics"
                              << (options.metrics_vllm_compat ? " (with vLLM names)" : "");
  }
  rt->engine_->Start();

  OCTET_RETURN_IF_ERROR(rt->WarmUp());
  OCTET_LOG(INFO, "worker") << "model " << config.model_type << " loaded: " << config.num_hidden_layers
                            << " layers, context " << max_model_len << ", " << num_blocks << " KV blocks of " << bs
                            << " tokens on " << rt->backend_->name() << "; weights: " << info.weight_dtype() << ", "
                            << ws.fp8_bytes + ws.other_bytes << " bytes; KV cache " << DTypeName(options.kv_cache_dtype)
                            << ", " << spec.BytesPerToken(options.kv_cache_dtype) << " bytes per token";
  OCTET_LOG(INFO, "worker") << plan.Summary();
  return rt;
}

WorkerRuntime::~WorkerRuntime() {
  if (engine_) engine_->Stop();
}

absl::Status WorkerRuntime::WarmUp() {
  auto sink = std::make_shared<WaitSink>();
  EngineRequest request;
  request.request_id = "warmup";
  request.prompt_token_ids = {0};
  request.sampling.max_tokens = 1;
  request.sampling.temperature = 0.0f;
  request.sampling.ignore_eos = true;
  request.sink = sink;
  engine_->Submit(std::move(request));
  if (sink->Wait() != FinishReason::kLength) return absl::InternalError("the warm-up request did not complete");
  return absl::OkStatus();
}

void WorkerRuntime::Publish(ServedModel& served) const {
  served.tokenizer = tokenizer_.get();
  served.engine = engine_.get();
  served.limits = limits_;
  served.info = info_;
  served.observer = metrics_.get();
  served.ready.store(true);
}

}  // namespace octet
