// The whole model on one GPU: decode step time at several batch sizes and prefill throughput, on a synthetic model
// of real shapes (default synthetic:qwen3.5-27b, official FP8 recipe, FP8 KV), with the limits measured in the same
// run: the device copy bandwidth, and cuBLASLt's block-scaled FP8 GEMM on the model's largest prefill GEMM.
//
// Decode: B sequences of --context cached tokens each take one token; the time is the step + the logits' download
// (the host sync a real step has), median of --iters after warm-up, op by op (eager) and replayed from the CUDA
// graph the worker would use (decode_graphs.h; the figure reported). Bytes a step must read: every weight that is
// multiplied (all linear layers and the LM head; B embedding rows), the KV of B * (context + 1) tokens, and the
// recurrent state read and written once; limit = bytes / copy bandwidth. Prefill: one sequence of L tokens in
// chunks of --prefill-chunk tokens, tokens / time.
//   model_bench [--model synthetic:qwen3.5-27b] [--out DIR] [--batches 1,8,32,64,128] [--context 1024]
//               [--prefill 1024,4096,16384] [--iters 10] [--graph-max-batch 256] [--profile] [--kv-cache-dtype
//               fp8|bf16]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fp8_gemm_lt.h"
#include "nlohmann/json.hpp"
#include "worker/engine/decode_graphs.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/runtime/cuda_backend.h"

namespace octet {
namespace {

struct Args {
  std::string model = "synthetic:qwen3.5-27b";
  std::string out;
  std::vector<int> batches = {1, 8, 32, 64, 128};
  int context = 1024;
  std::vector<int> prefill = {1024, 4096, 16384};
  int prefill_chunk = 4096;
  int iters = 10;
  int graph_max_batch = 256;  // as the worker's --cuda-graph-max-batch: larger batches run eagerly
  bool profile = false;       // GPU time per op for each decode batch and prefill (the step times then include events)
  DType kv_dtype = DType::kF8E4M3;  // --kv-cache-dtype fp8|bf16
};

std::vector<int> IntList(const std::string& s) {
  std::vector<int> v;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    int x = 0;
    if (!absl::SimpleAtoi(part, &x) || x <= 0) {
      std::fprintf(stderr, "model_bench: bad number list %s\n", s.c_str());
      std::exit(2);
    }
    v.push_back(x);
  }
  return v;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&](const char* flag) -> const char* {
      const std::string prefix = std::string(flag) + "=";
      if (arg.rfind(prefix, 0) == 0) return argv[i] + prefix.size();
      if (arg == flag && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (const char* v = value("--model"))
      a.model = v;
    else if (const char* v = value("--out"))
      a.out = v;
    else if (const char* v = value("--batches"))
      a.batches = IntList(v);
    else if (const char* v = value("--context"))
      a.context = IntList(v)[0];
    else if (const char* v = value("--prefill"))
      a.prefill = IntList(v);
    else if (const char* v = value("--prefill-chunk"))
      a.prefill_chunk = IntList(v)[0];
    else if (const char* v = value("--iters"))
      a.iters = IntList(v)[0];
    else if (const char* v = value("--graph-max-batch"))
      a.graph_max_batch = IntList(v)[0];
    else if (arg == "--profile")
      a.profile = true;
    else if (const char* v = value("--kv-cache-dtype")) {
      const std::string d = v;
      if (d != "fp8" && d != "bf16") {
        std::fprintf(stderr, "model_bench: --kv-cache-dtype must be fp8 or bf16\n");
        std::exit(2);
      }
      a.kv_dtype = d == "fp8" ? DType::kF8E4M3 : DType::kBF16;
    } else {
      std::fprintf(stderr, "model_bench: unknown argument %s\n", arg.c_str());
      std::exit(2);
    }
  }
  return a;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double CopyBandwidth() {  // bytes read + written per second, D2D 1 GiB
  const size_t bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  CUDA_CHECK(cudaMalloc(&src, bytes));
  CUDA_CHECK(cudaMalloc(&dst, bytes));
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    CUDA_CHECK(cudaEventRecord(a));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    if (i >= 5) ms.push_back(t);
  }
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));
  return 2.0 * static_cast<double>(bytes) / (Median(ms) * 1e-3);
}

// cuBLASLt's block-scaled FP8 GEMM alone on [tokens, in] x [out, in]^T: FLOP/s.
double LtGemmFlops(int64_t tokens, int64_t in, int64_t out) {
  cuda::Fp8GemmLt gemm;
  void *xq, *xs, *wq, *ws, *y, *work;
  const size_t work_bytes = cuda::Fp8GemmLt::WorkspaceBytes(tokens, in, out);
  CUDA_CHECK(cudaMalloc(&xq, tokens * in));
  CUDA_CHECK(cudaMalloc(&xs, tokens * (in / 128) * 4));
  CUDA_CHECK(cudaMalloc(&wq, out * in));
  CUDA_CHECK(cudaMalloc(&ws, cuda::Fp8GemmLt::WeightScaleBytes(in, out)));
  CUDA_CHECK(cudaMalloc(&y, tokens * out * 4));
  CUDA_CHECK(cudaMalloc(&work, work_bytes));
  CUDA_CHECK(cudaMemset(xq, 0x38, tokens * in));  // 1.0 in E4M3
  CUDA_CHECK(cudaMemset(wq, 0x38, out * in));
  CUDA_CHECK(cudaMemset(xs, 0, tokens * (in / 128) * 4));
  CUDA_CHECK(cudaMemset(ws, 0, cuda::Fp8GemmLt::WeightScaleBytes(in, out)));
  std::vector<double> ms;
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 20; ++i) {
    CUDA_CHECK(cudaEventRecord(a));
    CUDA_CHECK(gemm.Run(static_cast<uint8_t*>(xq), static_cast<float*>(xs), static_cast<uint8_t*>(wq),
                        static_cast<float*>(ws), static_cast<float*>(y), tokens, in, out, work, work_bytes, nullptr));
    CUDA_CHECK(cudaEventRecord(b));
    CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    if (i >= 5) ms.push_back(t);
  }
  for (void* p : {xq, xs, wq, ws, y, work}) CUDA_CHECK(cudaFree(p));
  return 2.0 * static_cast<double>(tokens) * static_cast<double>(in) * static_cast<double>(out) / (Median(ms) * 1e-3);
}

// B sequences with `context` cached tokens each, one new token apiece; block tables over distinct blocks.
ForwardBatch DecodeBatch(Backend& backend, int batch, int context, int block_size) {
  const int blocks_per_seq = (context + 1 + block_size - 1) / block_size;
  std::vector<int32_t> ids(batch), positions(batch), query_start(batch + 1), context_lens(batch), tables, slots(batch),
      state_slots(batch), rows(batch);
  for (int b = 0; b < batch; ++b) {
    ids[b] = (b * 7919) % 1000;
    positions[b] = context;
    query_start[b] = b;
    context_lens[b] = context + 1;
    for (int k = 0; k < blocks_per_seq; ++k) tables.push_back(b * blocks_per_seq + k);
    slots[b] = (b * blocks_per_seq + context / block_size) * block_size + context % block_size;
    state_slots[b] = b;
    rows[b] = b;
  }
  query_start[batch] = batch;
  ForwardBatch fb;
  fb.input_ids = backend.Upload(DType::kI32, ids.data(), {batch});
  fb.positions = backend.Upload(DType::kI32, positions.data(), {batch});
  fb.attention.num_seqs = batch;
  fb.attention.max_query_len = 1;
  fb.attention.max_context_len = context + 1;
  fb.attention.block_size = block_size;
  fb.attention.query_start = backend.Upload(DType::kI32, query_start.data(), {batch + 1});
  fb.attention.context_lens = backend.Upload(DType::kI32, context_lens.data(), {batch});
  fb.attention.block_tables = backend.Upload(DType::kI32, tables.data(), {batch, blocks_per_seq});
  fb.attention.slot_mapping = backend.Upload(DType::kI32, slots.data(), {batch});
  fb.attention.state_slots = backend.Upload(DType::kI32, state_slots.data(), {batch});
  fb.logit_rows = backend.Upload(DType::kI32, rows.data(), {batch});
  return fb;
}

double TimeMs(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int Run(const Args& args) {
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const double copy_bw = CopyBandwidth();
  std::printf("device: %s; copy bandwidth (D2D, read+write) %.0f GB/s\n", prop.name, copy_bw / 1e9);

  CudaBackend backend(CudaBackendOptions{.profile_ops = args.profile});
  const auto load_start = std::chrono::steady_clock::now();
  auto loaded = LoadModel(args.model, backend, LoadOptions{.recipe = Fp8Recipe::kOfficial});
  if (!loaded.ok()) {
    std::fprintf(stderr, "model_bench: %s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  backend.Synchronize();
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  const ModelConfig& c = loaded->config;
  Model& model = *loaded->model;
  const WeightStats& ws = loaded->weight_stats;
  const KvCacheSpec spec = model.kv_cache_spec();
  // Read per decode step: all weights but the embedding table (only B rows of it are gathered).
  const double embed_bytes = static_cast<double>(c.vocab_size) * c.hidden_size * 4;  // fp32 table on the GPU
  const double weight_bytes = static_cast<double>(ws.fp8_bytes + ws.other_bytes) - embed_bytes;
  std::printf("model %s: %lld layers, weights %.2f GB (%d FP8 layers, %.2f GB FP8); loaded in %.1f s\n",
              args.model.c_str(), static_cast<long long>(c.num_hidden_layers), (ws.fp8_bytes + ws.other_bytes) / 1e9,
              ws.fp8_layers, ws.fp8_bytes / 1e9, load_s);

  const int64_t big_in = c.hidden_size, big_out = 2 * c.intermediate_size;
  const double lt_flops = LtGemmFlops(4096, big_in, big_out);
  std::printf("cuBLASLt block-scaled FP8 GEMM 4096x%lldx%lld: %.0f TFLOP/s\n", static_cast<long long>(big_out),
              static_cast<long long>(big_in), lt_flops / 1e12);

  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const char* commit = std::getenv("OCTET_COMMIT");
  nlohmann::json result = {{"device", prop.name},
                           {"date", date},
                           {"commit", commit ? commit : "unknown"},
                           {"model", args.model},
                           {"recipe", "official"},
                           {"kv_cache_dtype", std::string(DTypeName(args.kv_dtype))},
                           {"copy_bandwidth_GBps", copy_bw / 1e9},
                           {"cublaslt_fp8_gemm_TFLOPs", lt_flops / 1e12},
                           {"weights_bytes", ws.fp8_bytes + ws.other_bytes}};

  const int block_size = 16;
  const int max_batch = *std::max_element(args.batches.begin(), args.batches.end());
  const int blocks_per_seq = (args.context + 1 + block_size - 1) / block_size;
  {
    // One extra state slot: the decode graphs' padding rows.
    KvCache cache =
        AllocateKvCache(backend, spec, max_batch * blocks_per_seq, block_size, max_batch + 1, args.kv_dtype);
    DecodeGraphsConfig graph_config{std::min(max_batch, args.graph_max_batch), args.context + 1, max_batch};
    std::unique_ptr<DecodeGraphs> graphs = DecodeGraphs::Capture(model, backend, cache, graph_config);
    std::printf("\ndecode (context %d)   eager ms   graph ms   tokens/s   bytes/step GB   limit ms   of limit\n",
                args.context);
    for (int batch : args.batches) {
      const ForwardBatch fb = DecodeBatch(backend, batch, args.context, block_size);
      std::vector<double> ms;
      if (args.profile) backend.ProfileReport();  // reset
      // A step as the worker runs it: the forward on the device, then a sync (the worker samples on the device and
      // downloads only token ids, so neither path here downloads the [batch, vocab] logits).
      for (int i = 0; i < args.iters + 3; ++i) {
        const double t = TimeMs([&] {
          Tensor out = model.Forward(fb, cache);
          backend.Synchronize();
        });
        if (i >= 3) ms.push_back(t);
      }
      if (args.profile) std::printf("%d eager steps:\n%s", args.iters + 3, backend.ProfileReport().c_str());
      const double eager_ms = Median(ms);
      // The same step replayed from the decode graph of its batch size.
      std::vector<std::vector<int32_t>> tables(static_cast<size_t>(batch));
      std::vector<DecodeRow> rows;
      for (int b = 0; b < batch; ++b) {
        for (int k = 0; k < blocks_per_seq; ++k) tables[b].push_back(b * blocks_per_seq + k);
        const int32_t slot = (b * blocks_per_seq + args.context / block_size) * block_size + args.context % block_size;
        rows.push_back(DecodeRow{(b * 7919) % 1000, args.context, slot, &tables[b], b});
      }
      std::vector<double> graph_ms;
      const bool graphed = graphs && graphs->Covers(batch, args.context + 1);
      for (int i = 0; graphed && i < args.iters + 3; ++i) {
        const double t = TimeMs([&] {
          graphs->Replay(rows);
          backend.Synchronize();
        });
        if (i >= 3) graph_ms.push_back(t);
      }
      const double step_ms = graphed ? Median(graph_ms) : eager_ms;
      const double kv_bytes = static_cast<double>(batch) * (args.context + 1) * spec.BytesPerToken(args.kv_dtype);
      const double state_bytes = 2.0 * batch * spec.BytesPerStateSlot(DType::kF32);
      const double bytes = weight_bytes + kv_bytes + state_bytes;
      const double limit_ms = bytes / copy_bw * 1e3;
      std::printf("  batch %3d            %8.2f   %8s   %8.0f   %13.2f   %8.2f   %7.1f%%\n", batch, eager_ms,
                  graphed ? absl::StrFormat("%.2f", step_ms).c_str() : "-", batch / (step_ms * 1e-3), bytes / 1e9,
                  limit_ms, 100.0 * limit_ms / step_ms);
      result["decode"].push_back({{"batch", batch},
                                  {"context", args.context},
                                  {"eager_step_ms", eager_ms},
                                  {"step_ms", step_ms},
                                  {"cuda_graph", graphed},
                                  {"tokens_per_s", batch / (step_ms * 1e-3)},
                                  {"bytes_per_step", bytes},
                                  {"bandwidth_limit_ms", limit_ms},
                                  {"fraction_of_limit", limit_ms / step_ms}});
    }
  }
  std::printf("\nprefill (chunks of %d)   tokens   time s   tokens/s\n", args.prefill_chunk);
  for (int len : args.prefill) {
    const int blocks = (len + block_size - 1) / block_size;
    KvCache cache = AllocateKvCache(backend, spec, blocks, block_size, 1, args.kv_dtype);
    std::vector<int32_t> ids(len), table(blocks);
    for (int i = 0; i < len; ++i) ids[i] = (i * 7919) % 1000;
    for (int i = 0; i < blocks; ++i) table[i] = i;
    std::vector<double> seconds;
    for (int rep = 0; rep < 2; ++rep) {  // the first run warms up cuBLASLt's plans and the memory pool
      const double ms = TimeMs([&] {
        for (int begin = 0; begin < len; begin += args.prefill_chunk) {
          const int end = std::min(len, begin + args.prefill_chunk);
          const std::vector<int32_t> chunk(ids.begin() + begin, ids.begin() + end);
          ForwardBatch fb = SequenceBatch(backend, chunk, begin, table, block_size, 0);
          const int32_t last_row = end - begin - 1;  // as in serving, only the last position's logits
          fb.logit_rows = backend.Upload(DType::kI32, &last_row, {1});
          Tensor out = model.Forward(fb, cache);
          if (end == len) {
            std::vector<float> last(static_cast<size_t>(out.numel()));
            backend.Download(out, last.data());
          }
        }
      });
      seconds.push_back(ms / 1e3);
    }
    const double s = seconds.back();
    if (args.profile) std::printf("2 runs:\n%s", backend.ProfileReport().c_str());
    std::printf("  %24d   %6.2f   %8.0f\n", len, s, len / s);
    result["prefill"].push_back(
        {{"tokens", len}, {"chunk", args.prefill_chunk}, {"seconds", s}, {"tokens_per_s", len / s}});
  }
  if (!args.out.empty()) {
    std::ofstream(args.out + "/model_bench.json") << result.dump(2) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace octet

int main(int argc, char** argv) { return octet::Run(octet::ParseArgs(argc, argv)); }
