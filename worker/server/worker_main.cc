// octet-worker: serves one model over gRPC (octet.v1.Generation, grpc.health.v1, reflection).
// Starts listening at once (health NOT_SERVING, requests UNAVAILABLE), loads and warms the model, then SERVING.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/flag_names.h"
#include "base/log.h"
#include "worker/server/generation_service.h"
#include "worker/server/worker_control_service.h"
#include "worker/server/worker_runtime.h"

ABSL_FLAG(std::string, model, "",
          "Hugging Face model folder (config.json, *.safetensors, tokenizer.json), or synthetic:PRESET (random weights "
          "of a real model's shapes: qwen3.5-27b, qwen3.5-27b-8l, qwen3.5-tiny, qwen3-32b)");
ABSL_FLAG(std::string, tokenizer, "", "tokenizer.json to use (default: the model folder's; required for synthetic:)");
ABSL_FLAG(std::string, served_model_name, "", "Model name reported to clients (default: the folder's name)");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on");
ABSL_FLAG(int32_t, port, 50051, "Port to listen on (0 picks a free one)");
ABSL_FLAG(int32_t, max_model_len, 0, "Context length: prompt + completion tokens (0 = the model's maximum)");
ABSL_FLAG(int32_t, block_size, 16, "Tokens per KV cache block");
ABSL_FLAG(int32_t, num_kv_blocks, 0, "KV cache blocks (0 = sized from --kv_cache_memory_bytes)");
ABSL_FLAG(int64_t, kv_cache_memory_bytes, 0,
          "Memory for the KV cache when --num_kv_blocks is 0 (0 = on a GPU, what --gpu_memory_utilization leaves; "
          "on the CPU, 1 GiB)");
ABSL_FLAG(std::string, device, "auto",
          "Where the model runs: auto (the first GPU if any, else the CPU), cpu, cuda, cuda:N");
ABSL_FLAG(int32_t, max_queued_requests, 1024,
          "Requests waiting for a place in the batch, at most; beyond it a request fails at once with "
          "RESOURCE_EXHAUSTED (0 = no bound)");
ABSL_FLAG(bool, enable_prefix_caching, true,
          "Reuse the KV cache of prompt prefixes seen before (full blocks, evicted least recently used first). "
          "Attention-only models; a hybrid model (Qwen3.5) always serves without it");
ABSL_FLAG(double, drain_timeout, 30.0,
          "On SIGTERM or Drain: seconds to let accepted requests finish before the rest are cancelled");
ABSL_FLAG(int32_t, metrics_port, 0, "Port of the Prometheus endpoint /metrics on --host (0 = none)");
ABSL_FLAG(std::string, metrics_compat, "",
          "vllm: also export vLLM's names for the gauges gateways and autoscalers read (num_requests_running, ...)");
ABSL_FLAG(bool, enforce_eager, false, "Run decode steps op by op, without CUDA graphs");
ABSL_FLAG(int32_t, cuda_graph_max_context, 8192, "Decode steps with longer contexts than this run without CUDA graphs");
ABSL_FLAG(int32_t, cuda_graph_max_batch, 256,
          "Decode steps of more sequences than this run without CUDA graphs (graphs are captured for batch 1, 2, 4, "
          "... up to the smaller of this and --max-num-seqs; on an H200 with synthetic:qwen3.5-27b they were faster "
          "than eager steps at every batch from 1 to 256: bench/results/model_bench_h200.json)");
ABSL_FLAG(double, gpu_memory_utilization, 0.9,
          "Fraction of the GPU's memory for weights, KV cache, recurrent state and activations");
ABSL_FLAG(int32_t, max_num_seqs, 64, "Sequences running at once");
ABSL_FLAG(int32_t, max_num_batched_tokens, 2048, "Tokens per engine step (prefill chunk size)");
ABSL_FLAG(std::string, fp8_recipe, "official",
          "Which linear layers run in FP8: official (attention, Gated DeltaNet and MLP projections), mlp-only, all, "
          "none (16-bit everywhere)");
ABSL_FLAG(std::string, kv_cache_dtype, "fp8",
          "KV cache values: fp8 (E4M3 with per-token, per-head scales), bf16, fp32");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve gRPC over TLS (with --tls-key; default: plaintext)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert (unencrypted)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: require every client (the router) to show a certificate they signed (mutual TLS)");
ABSL_FLAG(int32_t, max_request_bytes, 4 << 20,
          "Largest gRPC request message accepted; a larger one gets RESOURCE_EXHAUSTED");

namespace octet {
namespace {

absl::StatusOr<std::string> ReadPemFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  if (contents.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is not a PEM file"));
  }
  return contents.str();
}

// --tls-cert, --tls-key, --tls-client-ca: TLS credentials (mutual TLS with a client CA), else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: give both or neither");
  }
  if (cert.empty()) {
    if (!client_ca.empty()) return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options(client_ca.empty()
                                                ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                                : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  absl::StatusOr<std::string> cert_chain = ReadPemFile("--tls-cert", cert);
  if (!cert_chain.ok()) return cert_chain.status();
  absl::StatusOr<std::string> private_key = ReadPemFile("--tls-key", key);
  if (!private_key.ok()) return private_key.status();
  options.pem_key_cert_pairs.push_back({.private_key = *std::move(private_key), .cert_chain = *std::move(cert_chain)});
  if (!client_ca.empty()) {
    absl::StatusOr<std::string> roots = ReadPemFile("--tls-client-ca", client_ca);
    if (!roots.ok()) return roots.status();
    options.pem_root_certs = *std::move(roots);
  }
  return grpc::SslServerCredentials(options);
}

int Run() {
  const std::string model_dir = absl::GetFlag(FLAGS_model);
  if (model_dir.empty()) {
    std::fprintf(stderr, "octet-worker: --model is required\n");
    return 2;
  }
  absl::StatusOr<Fp8Recipe> recipe = ParseFp8Recipe(absl::GetFlag(FLAGS_fp8_recipe));
  absl::StatusOr<DType> kv_dtype = ParseKvCacheDtype(absl::GetFlag(FLAGS_kv_cache_dtype));
  if (!recipe.ok() || !kv_dtype.ok()) {
    std::fprintf(stderr, "octet-worker: %s\n",
                 std::string(recipe.ok() ? kv_dtype.status().message() : recipe.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentialsFromFlags();
  if (!credentials.ok()) {
    std::fprintf(stderr, "octet-worker: %s\n", std::string(credentials.status().message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_max_request_bytes) < 1) {
    std::fprintf(stderr, "octet-worker: --max-request-bytes must be at least 1\n");
    return 2;
  }
  const std::string compat = absl::GetFlag(FLAGS_metrics_compat);
  if (!compat.empty() && compat != "vllm") {
    std::fprintf(stderr, "octet-worker: --metrics-compat must be vllm or empty, got \"%s\"\n", compat.c_str());
    return 2;
  }
  // Signals are taken by sigwait below, so block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServedModel served;
  GenerationService service(served);
  WorkerControlService control(served);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string address = absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  builder.AddListeningPort(address, *credentials, &port);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_request_bytes));
  builder.RegisterService(&service);
  builder.RegisterService(&control);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    OCTET_LOG(ERROR, "worker") << "cannot listen on " << address;
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  OCTET_LOG(INFO, "worker") << "listening on port " << port << "; loading " << model_dir;

  WorkerOptions options;
  options.model_dir = model_dir;
  options.tokenizer = absl::GetFlag(FLAGS_tokenizer);
  options.served_model_name = absl::GetFlag(FLAGS_served_model_name);
  if (options.served_model_name.empty()) {
    options.served_model_name = std::filesystem::path(model_dir).lexically_normal().filename().string();
    if (options.served_model_name.empty()) {
      options.served_model_name = std::filesystem::path(model_dir).lexically_normal().parent_path().filename();
    }
  }
  options.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  options.block_size = absl::GetFlag(FLAGS_block_size);
  options.num_kv_blocks = absl::GetFlag(FLAGS_num_kv_blocks);
  options.kv_cache_memory_bytes = absl::GetFlag(FLAGS_kv_cache_memory_bytes);
  options.device = absl::GetFlag(FLAGS_device);
  options.gpu_memory_utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  options.enforce_eager = absl::GetFlag(FLAGS_enforce_eager);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.max_queued_requests = absl::GetFlag(FLAGS_max_queued_requests);
  options.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  options.metrics_host = absl::GetFlag(FLAGS_host);
  options.metrics_vllm_compat = absl::GetFlag(FLAGS_metrics_compat) == "vllm";
  options.cuda_graph_max_context = absl::GetFlag(FLAGS_cuda_graph_max_context);
  options.cuda_graph_max_batch = absl::GetFlag(FLAGS_cuda_graph_max_batch);
  options.scheduler.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  options.scheduler.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  options.fp8_recipe = *recipe;
  options.kv_cache_dtype = *kv_dtype;

  absl::StatusOr<std::unique_ptr<WorkerRuntime>> runtime = WorkerRuntime::Create(options);
  if (!runtime.ok()) {
    OCTET_LOG(ERROR, "worker") << "cannot serve " << model_dir << ": " << runtime.status().message();
    server->Shutdown();
    return 1;
  }
  (*runtime)->Publish(served);
  health->SetServingStatus(true);
  std::fprintf(stderr, "octet-worker: serving %s on %s:%d\n", options.served_model_name.c_str(),
               absl::GetFlag(FLAGS_host).c_str(), port);
  std::fflush(stderr);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  // Drain: stop admission, let the accepted requests finish (up to --drain-timeout), then stop.
  served.draining.store(true);
  health->SetServingStatus(false);
  const Engine& engine = (*runtime)->engine();
  const int64_t unfinished = engine.stats().num_unfinished.load();
  OCTET_LOG(INFO, "worker") << "signal " << signal_number << ": draining " << unfinished << " requests (up to "
                            << absl::GetFlag(FLAGS_drain_timeout) << " s)";
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(absl::GetFlag(FLAGS_drain_timeout));
  while (engine.stats().num_unfinished.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const int64_t left = engine.stats().num_unfinished.load();
  if (left > 0) OCTET_LOG(WARNING, "worker") << "drain timed out: " << left << " requests end as cancelled";
  served.ready.store(false);
  (*runtime)->engine().Stop();  // whatever is left ends as cancelled
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  OCTET_LOG(INFO, "worker") << "drained; exiting";
  return 0;
}

}  // namespace
}  // namespace octet

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("octet-worker --model DIR [--port N]: serve a model over gRPC");
  // Both spellings of flag names work: --fp8-recipe and --fp8_recipe.
  std::vector<std::string> args = octet::NormalizeFlagNames(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  return octet::Run();
}
