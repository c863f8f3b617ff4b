// The whole model on the GPU: the CUDA backend's logits against transformers (the HF fixtures) and against the CPU
// backend (fixtures, FP8 checkpoints and the bundled model, per FP8 recipe and KV cache dtype), and its greedy tokens.
// A greedy token may differ from the CPU's only where the CPU's top two logits are closer than the stated logit
// tolerance; such places are counted and printed. Set OCTET_GPU_RESULTS=FILE to also write the figures as JSON.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "worker/engine/decode_graphs.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/model/safetensors.h"
#include "worker/runtime/cpu_backend.h"
#include "worker/runtime/cuda_backend.h"
#include "worker/server/worker_runtime.h"

namespace octet {
namespace {

namespace fs = std::filesystem;

// Logits of the fp32 paths (recipe none, fp32 KV) may differ from transformers' by summation order only.
constexpr double kExactPathTolerance = 1e-4;
// A quantized path on the GPU may be at most this much further from the unquantized model than the CPU's.
constexpr double kQuantizedErrorRatio = 1.25;
// An argmax may flip where the top two logits are closer than this (absolute, in logits).
constexpr double kTieMargin = 0.05;

nlohmann::json& Results() {
  static nlohmann::json results = nlohmann::json::object();
  return results;
}

class ResultsWriter : public ::testing::Environment {
 public:
  void TearDown() override {
    if (const char* path = std::getenv("OCTET_GPU_RESULTS")) {
      std::ofstream(path) << Results().dump(2) << "\n";
    }
  }
};
const auto* const kWriter = ::testing::AddGlobalTestEnvironment(new ResultsWriter);

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

double RelativeL2(const float* got, const float* want, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// Logits [T, vocab] of one sequence, prefilled in chunks of `chunk` over a shuffled block table.
std::vector<float> Logits(Model& model, Backend& backend, const std::vector<int32_t>& ids, int32_t chunk,
                          DType kv_dtype) {
  const int32_t block_size = 16;
  const int32_t total = static_cast<int32_t>(ids.size());
  const int32_t num_blocks = (total + block_size - 1) / block_size + 1;
  const bool hybrid = model.kv_cache_spec().num_recurrent_layers > 0;
  KvCache cache = AllocateKvCache(backend, model.kv_cache_spec(), num_blocks, block_size, hybrid ? 2 : 0, kv_dtype);
  std::vector<int32_t> table(num_blocks);
  for (int32_t i = 0; i < num_blocks; ++i) table[i] = num_blocks - 1 - i;
  const size_t vocab = static_cast<size_t>(model.vocab_size());
  std::vector<float> out(static_cast<size_t>(total) * vocab);
  for (int32_t begin = 0; begin < total; begin += chunk) {
    const int32_t end = std::min(total, begin + chunk);
    const std::vector<int32_t> input(ids.begin() + begin, ids.begin() + end);
    const ForwardBatch fb = SequenceBatch(backend, input, begin, table, block_size, hybrid ? 1 : -1);
    Tensor logits = model.Forward(fb, cache);
    backend.Download(logits, out.data() + static_cast<size_t>(begin) * vocab);
  }
  return out;
}

struct Comparison {
  double max_rel_l2 = 0;
  int64_t positions = 0;
  int64_t argmax_same = 0;
  int64_t argmax_differs_near_tie = 0;  // top two of the reference within kTieMargin
  int64_t argmax_differs = 0;           // anywhere else: a failure
};

Comparison Compare(const std::vector<float>& got, const std::vector<float>& want, size_t vocab) {
  Comparison c;
  const size_t rows = want.size() / vocab;
  for (size_t r = 0; r < rows; ++r) {
    const float* g = got.data() + r * vocab;
    const float* w = want.data() + r * vocab;
    c.max_rel_l2 = std::max(c.max_rel_l2, RelativeL2(g, w, vocab));
    const size_t ga = std::max_element(g, g + vocab) - g;
    const size_t wa = std::max_element(w, w + vocab) - w;
    ++c.positions;
    if (ga == wa) {
      ++c.argmax_same;
    } else if (std::abs(w[ga] - w[wa]) < kTieMargin) {
      ++c.argmax_differs_near_tie;
    } else {
      ++c.argmax_differs;
    }
  }
  return c;
}

nlohmann::json ToJson(const Comparison& c) {
  return {{"max_rel_l2", c.max_rel_l2},
          {"positions", c.positions},
          {"argmax_same", c.argmax_same},
          {"argmax_differs_near_tie", c.argmax_differs_near_tie},
          {"argmax_differs", c.argmax_differs}};
}

std::vector<std::string> HfFixtures() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator("tests/fixtures/hf")) {
    if (fs::exists(e.path() / "reference.json")) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The fp32 path on the GPU against transformers, whole prompts and 5-token chunks.
TEST(CudaModelTest, HfFixturesMatchTransformers) {
  ASSERT_TRUE(CudaDeviceAvailable());
  CudaBackend gpu;
  for (const std::string& name : HfFixtures()) {
    const fs::path dir = fs::path("tests/fixtures/hf") / name;
    const nlohmann::json ref = ReadJson(dir / "reference.json");
    auto ref_file = SafetensorsFile::Open((dir / "reference.safetensors").string());
    ASSERT_TRUE(ref_file.ok()) << ref_file.status();
    auto loaded = LoadModel(dir.string(), gpu, LoadOptions{.recipe = Fp8Recipe::kNone});
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    Model& model = *loaded->model;
    const size_t vocab = static_cast<size_t>(model.vocab_size());
    double worst = 0;
    const auto& prompts = ref["prompts"];
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::vector<int32_t> ids = prompts[i].get<std::vector<int32_t>>();
      auto want = ReadAsFloat32(*(*ref_file)->Find(absl::StrCat("logits.", i)));
      ASSERT_TRUE(want.ok());
      const int64_t ref_vocab = (*ref_file)->Find(absl::StrCat("logits.", i))->shape[1];
      std::vector<int32_t> positions(ids.size());
      for (size_t t = 0; t < ids.size(); ++t) positions[t] = static_cast<int32_t>(t);
      const std::string key = std::to_string(i);
      if (ref.contains("logit_positions") && ref["logit_positions"].contains(key)) {
        positions = ref["logit_positions"][key].get<std::vector<int32_t>>();
      }
      for (int32_t chunk : {static_cast<int32_t>(ids.size()), 5}) {
        const std::vector<float> got = Logits(model, gpu, ids, chunk, DType::kF32);
        for (size_t r = 0; r < positions.size(); ++r) {
          const double err = RelativeL2(got.data() + static_cast<size_t>(positions[r]) * vocab,
                                        want->data() + r * ref_vocab, static_cast<size_t>(ref_vocab));
          worst = std::max(worst, err);
        }
      }
    }
    std::printf("[gpu vs transformers] %-24s max relative L2 %.3g\n", name.c_str(), worst);
    Results()["vs_transformers"][name] = worst;
    EXPECT_LT(worst, kExactPathTolerance) << name;
  }
}

struct RecipeCase {
  Fp8Recipe recipe;
  DType kv;
};

double MeanRelativeL2(const std::vector<float>& got, const std::vector<float>& want, size_t vocab) {
  const size_t rows = want.size() / vocab;
  double sum = 0;
  for (size_t r = 0; r < rows; ++r) sum += RelativeL2(got.data() + r * vocab, want.data() + r * vocab, vocab);
  return sum / static_cast<double>(rows);
}

// exp(mean NLL) of ids[p + 1] under the logits of position p.
double Perplexity(const std::vector<float>& logits, const std::vector<int32_t>& ids, size_t vocab) {
  double nll = 0;
  for (size_t p = 0; p + 1 < ids.size(); ++p) {
    const float* row = logits.data() + p * vocab;
    const double max = *std::max_element(row, row + vocab);
    double sum = 0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
    nll += std::log(sum) + max - row[ids[p + 1]];
  }
  return std::exp(nll / static_cast<double>(ids.size() - 1));
}

// The same model and recipe on both backends. The exact path (recipe none, fp32 KV) must agree to rounding. A
// quantized path cannot: a last-bit difference in an fp32 activation sometimes rounds it to the neighbouring FP8 or
// bf16 code (a 6-12% step for FP8), and such steps spread through the layers; the GPU also rounds q and P to bf16
// in prefill attention over 16-bit and FP8 caches. So a quantized path on the GPU must be as good an
// approximation of the unquantized model as the CPU's quantized path: as close in mean relative L2 of the logits
// (within kQuantizedErrorRatio), its top-1 agreement with the unquantized model no lower than the CPU's by more than
// two standard errors of the difference of two such fractions (the random fixtures agree only 50-70% of the time
// over 150 positions: +-11 points; the trained bundled model ~97% over 512: +-2 points), and its perplexity on the
// prompt within 1%. Argmax flips against the CPU's quantized logits are counted and printed.
// The GPU runs twice: as served (cuBLASLt for FP8 GEMMs of >= 16 tokens), and with our GEMV for every FP8 GEMM.
void CompareBackends(const std::string& label, const std::string& dir, const std::vector<int32_t>& ids,
                     const std::vector<RecipeCase>& cases) {
  CpuBackend cpu;
  CudaBackend gpu;
  CudaBackend gpu_gemv(CudaBackendOptions{.fp8_gemm_cublaslt = false});
  auto exact = LoadModel(dir, cpu, LoadOptions{.recipe = Fp8Recipe::kNone});
  ASSERT_TRUE(exact.ok()) << exact.status();
  const size_t vocab = static_cast<size_t>(exact->model->vocab_size());
  const std::vector<float> reference = Logits(*exact->model, cpu, ids, 64, DType::kF32);
  for (const RecipeCase& rc : cases) {
    auto on_cpu = LoadModel(dir, cpu, LoadOptions{.recipe = rc.recipe});
    auto on_gpu = LoadModel(dir, gpu, LoadOptions{.recipe = rc.recipe});
    auto on_gpu_gemv = LoadModel(dir, gpu_gemv, LoadOptions{.recipe = rc.recipe});
    ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
    ASSERT_TRUE(on_gpu.ok()) << on_gpu.status();
    ASSERT_TRUE(on_gpu_gemv.ok()) << on_gpu_gemv.status();
    const std::vector<float> want = Logits(*on_cpu->model, cpu, ids, 64, rc.kv);
    const std::vector<float> got = Logits(*on_gpu->model, gpu, ids, 64, rc.kv);
    const std::vector<float> got_gemv = Logits(*on_gpu_gemv->model, gpu_gemv, ids, 64, rc.kv);
    const Comparison c = Compare(got, want, vocab);
    const double cpu_error = MeanRelativeL2(want, reference, vocab);
    const double gpu_error = MeanRelativeL2(got, reference, vocab);
    const double gemv_error = MeanRelativeL2(got_gemv, reference, vocab);
    const double cpu_ppl = Perplexity(want, ids, vocab), gpu_ppl = Perplexity(got, ids, vocab);
    const Comparison cpu_top1 = Compare(want, reference, vocab), gpu_top1 = Compare(got, reference, vocab);
    const double cpu_agree = static_cast<double>(cpu_top1.argmax_same) / static_cast<double>(cpu_top1.positions);
    const double gpu_agree = static_cast<double>(gpu_top1.argmax_same) / static_cast<double>(gpu_top1.positions);
    const std::string key = absl::StrCat(std::string(Fp8RecipeName(rc.recipe)), "/", std::string(DTypeName(rc.kv)));
    std::printf(
        "[gpu vs cpu] %-22s %-18s vs cpu: max rel L2 %.3g, argmax same %lld/%lld (near-tie flips %lld, other %lld); "
        "mean rel L2 to the unquantized model: cpu %.3g, gpu %.3g (gemv only %.3g); top-1 agreement with it: cpu "
        "%.3f, gpu %.3f; ppl cpu %.4f gpu %.4f\n",
        label.c_str(), key.c_str(), c.max_rel_l2, static_cast<long long>(c.argmax_same),
        static_cast<long long>(c.positions), static_cast<long long>(c.argmax_differs_near_tie),
        static_cast<long long>(c.argmax_differs), cpu_error, gpu_error, gemv_error, cpu_agree, gpu_agree, cpu_ppl,
        gpu_ppl);
    nlohmann::json j = ToJson(c);
    j["mean_rel_l2_to_unquantized_cpu"] = cpu_error;
    j["mean_rel_l2_to_unquantized_gpu"] = gpu_error;
    j["mean_rel_l2_to_unquantized_gpu_gemv_only"] = gemv_error;
    j["top1_agreement_with_unquantized_cpu"] = cpu_agree;
    j["top1_agreement_with_unquantized_gpu"] = gpu_agree;
    j["perplexity_cpu"] = cpu_ppl;
    j["perplexity_gpu"] = gpu_ppl;
    Results()["vs_cpu"][label][key] = j;
    if (rc.recipe == Fp8Recipe::kNone && rc.kv == DType::kF32) {
      EXPECT_LT(c.max_rel_l2, kExactPathTolerance) << label << " " << key;
      EXPECT_EQ(c.argmax_same, c.positions) << label << " " << key;
    } else {
      EXPECT_LT(gpu_error, kQuantizedErrorRatio * cpu_error + 1e-4) << label << " " << key;
      EXPECT_LT(std::abs(gpu_ppl / cpu_ppl - 1), 0.01) << label << " " << key;
      const double n = static_cast<double>(c.positions);
      const double margin = 2.0 * std::sqrt(2.0 * cpu_agree * (1.0 - cpu_agree) / n) + 1.0 / n;
      EXPECT_GE(gpu_agree, cpu_agree - margin) << label << " " << key;
    }
  }
}

const std::vector<RecipeCase> kAllCases = {
    {Fp8Recipe::kNone, DType::kF32},       {Fp8Recipe::kNone, DType::kBF16},  {Fp8Recipe::kOfficial, DType::kF8E4M3},
    {Fp8Recipe::kMlpOnly, DType::kF8E4M3}, {Fp8Recipe::kAll, DType::kF8E4M3}, {Fp8Recipe::kOfficial, DType::kBF16},
};

std::vector<int32_t> PseudoRandomIds(int32_t n, int32_t vocab, uint32_t seed) {
  std::vector<int32_t> ids(n);
  for (int32_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    ids[i] = static_cast<int32_t>((seed >> 8) % static_cast<uint32_t>(vocab));
  }
  return ids;
}

TEST(CudaModelTest, FixturesMatchCpuPerRecipe) {
  ASSERT_TRUE(CudaDeviceAvailable());
  for (const std::string& name : HfFixtures()) {
    const std::string dir = "tests/fixtures/hf/" + name;
    const nlohmann::json config = ReadJson(fs::path(dir) / "config.json");
    const nlohmann::json& text = config.contains("text_config") ? config["text_config"] : config;
    CompareBackends(name, dir, PseudoRandomIds(150, text["vocab_size"].get<int32_t>(), 7), kAllCases);
  }
  for (const char* name : {"qwen3-tiny-mqa-fp8", "qwen3_5-tiny-mqa-fp8"}) {
    const std::string dir = std::string("tests/fixtures/fp8/") + name;
    const nlohmann::json config = ReadJson(fs::path(dir) / "config.json");
    const nlohmann::json& text = config.contains("text_config") ? config["text_config"] : config;
    CompareBackends(name, dir, PseudoRandomIds(150, text["vocab_size"].get<int32_t>(), 11),
                    {{Fp8Recipe::kOfficial, DType::kF8E4M3}, {Fp8Recipe::kOfficial, DType::kBF16}});
  }
}

TEST(CudaModelTest, BundledModelMatchesCpuPerRecipe) {
  ASSERT_TRUE(CudaDeviceAvailable());
  const nlohmann::json windows = ReadJson("models/qwen3_5-code-small/eval_windows.json");
  std::vector<int32_t> ids = windows[0].get<std::vector<int32_t>>();
  CompareBackends("qwen3_5-code-small", "models/qwen3_5-code-small", ids, kAllCases);
}

// Decode steps replayed from CUDA graphs (padded to the graph's batch) give the eager steps' logits: five sequences
// of different lengths prefilled into two identical caches, then three decode steps on each, eager and graphed.
TEST(CudaModelTest, DecodeGraphsMatchEagerSteps) {
  ASSERT_TRUE(CudaDeviceAvailable());
  CudaBackend gpu;
  auto loaded = LoadModel("models/qwen3_5-code-small", gpu, LoadOptions{.recipe = Fp8Recipe::kOfficial});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Model& model = *loaded->model;
  const int32_t block_size = 16, blocks_per_seq = 8, num_seqs = 5, max_batch = 8;
  const size_t vocab = static_cast<size_t>(model.vocab_size());
  auto make_cache = [&] {
    return AllocateKvCache(gpu, model.kv_cache_spec(), num_seqs * blocks_per_seq, block_size, max_batch + 1,
                           DType::kF8E4M3);
  };
  KvCache eager_cache = make_cache(), graph_cache = make_cache();
  std::vector<std::vector<int32_t>> tables(num_seqs), tokens(num_seqs);
  for (int32_t b = 0; b < num_seqs; ++b) {
    for (int32_t k = 0; k < blocks_per_seq; ++k) tables[b].push_back(b * blocks_per_seq + k);
    tokens[b] = PseudoRandomIds(10 + 17 * b, model.vocab_size(), 100 + b);
    for (KvCache* cache : {&eager_cache, &graph_cache}) {
      Tensor out = model.Forward(SequenceBatch(gpu, tokens[b], 0, tables[b], block_size, b), *cache);
    }
  }
  std::unique_ptr<DecodeGraphs> graphs = DecodeGraphs::Capture(
      model, gpu, graph_cache, DecodeGraphsConfig{max_batch, blocks_per_seq * block_size, max_batch});
  ASSERT_NE(graphs, nullptr);
  EXPECT_EQ(graphs->batch_sizes(), (std::vector<int32_t>{1, 2, 4, 8}));
  for (int step = 0; step < 3; ++step) {
    std::vector<DecodeRow> rows;
    std::vector<int32_t> ids, positions, query_start{0}, context_lens, slots, state_slots, logit_rows;
    std::vector<int32_t> block_tables;
    for (int32_t b = 0; b < num_seqs; ++b) {
      const int32_t p = static_cast<int32_t>(tokens[b].size());
      const int32_t token = (p * 31 + b) % model.vocab_size();
      const int32_t slot = tables[b][p / block_size] * block_size + p % block_size;
      rows.push_back(DecodeRow{token, p, slot, &tables[b], b});
      ids.push_back(token);
      positions.push_back(p);
      query_start.push_back(b + 1);
      context_lens.push_back(p + 1);
      slots.push_back(slot);
      state_slots.push_back(b);
      logit_rows.push_back(b);
      block_tables.insert(block_tables.end(), tables[b].begin(), tables[b].end());
      tokens[b].push_back(token);
    }
    ForwardBatch fb;
    fb.input_ids = gpu.Upload(DType::kI32, ids.data(), {num_seqs});
    fb.positions = gpu.Upload(DType::kI32, positions.data(), {num_seqs});
    fb.attention.num_seqs = num_seqs;
    fb.attention.max_query_len = 1;
    fb.attention.max_context_len = *std::max_element(context_lens.begin(), context_lens.end());
    fb.attention.block_size = block_size;
    fb.attention.query_start = gpu.Upload(DType::kI32, query_start.data(), {num_seqs + 1});
    fb.attention.context_lens = gpu.Upload(DType::kI32, context_lens.data(), {num_seqs});
    fb.attention.block_tables = gpu.Upload(DType::kI32, block_tables.data(), {num_seqs, blocks_per_seq});
    fb.attention.slot_mapping = gpu.Upload(DType::kI32, slots.data(), {num_seqs});
    fb.attention.state_slots = gpu.Upload(DType::kI32, state_slots.data(), {num_seqs});
    fb.logit_rows = gpu.Upload(DType::kI32, logit_rows.data(), {num_seqs});
    std::vector<float> eager(num_seqs * vocab);
    gpu.Download(model.Forward(fb, eager_cache), eager.data());
    const std::vector<float> graphed = graphs->Run(rows);
    const Comparison c = Compare(graphed, eager, vocab);
    std::printf("[decode graphs] step %d: max rel L2 to eager %.3g, argmax same %lld/%lld\n", step, c.max_rel_l2,
                static_cast<long long>(c.argmax_same), static_cast<long long>(c.positions));
    EXPECT_LT(c.max_rel_l2, 1e-5) << "step " << step;
    EXPECT_EQ(c.argmax_same, c.positions) << "step " << step;
  }
}

// The whole serving path on the GPU (engine, scheduler with batching and chunked prefill, decode CUDA graphs, the
// sampler) in the exact configuration (recipe none, fp32 KV): every fixture prompt's greedy continuation, all
// submitted at once, equals transformers'.
class Collect final : public OutputSink {
 public:
  void Deliver(GenerationOutput o) override {
    std::lock_guard<std::mutex> lock(mu);
    tokens.insert(tokens.end(), o.token_ids.begin(), o.token_ids.end());
    if (o.finish_reason != FinishReason::kNone) {
      done = true;
      cv.notify_all();
    }
  }
  std::vector<int32_t> Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return done; });
    return tokens;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  bool done = false;
};

TEST(CudaModelTest, EngineGreedyMatchesTransformers) {
  ASSERT_TRUE(CudaDeviceAvailable());
  for (const std::string& name : HfFixtures()) {
    const fs::path dir = fs::path("tests/fixtures/hf") / name;
    const nlohmann::json ref = ReadJson(dir / "reference.json");
    WorkerOptions options;
    options.model_dir = dir.string();
    options.served_model_name = name;
    options.device = "cuda";
    options.block_size = 16;
    options.fp8_recipe = Fp8Recipe::kNone;
    options.kv_cache_dtype = DType::kF32;
    options.kv_cache_memory_bytes = int64_t{256} << 20;
    options.scheduler.max_num_batched_tokens = 64;  // long prompts arrive in chunks
    auto runtime = WorkerRuntime::Create(options);
    ASSERT_TRUE(runtime.ok()) << runtime.status();
    const auto& prompts = ref["prompts"];
    std::vector<std::shared_ptr<Collect>> sinks;
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto sink = std::make_shared<Collect>();
      EngineRequest r;
      r.request_id = absl::StrCat(name, "-", i);
      r.prompt_token_ids = prompts[i].get<std::vector<int32_t>>();
      r.sampling.temperature = 0;
      r.sampling.max_tokens = static_cast<int32_t>(ref["greedy"][i].size());
      r.sampling.ignore_eos = true;
      r.sink = sink;
      (*runtime)->engine().Submit(std::move(r));
      sinks.push_back(sink);
    }
    int matched = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const std::vector<int32_t> got = sinks[i]->Wait();
      const std::vector<int32_t> want = ref["greedy"][i].get<std::vector<int32_t>>();
      EXPECT_EQ(got, want) << name << " prompt " << i;
      matched += got == want;
    }
    std::printf("[engine on gpu] %-24s greedy continuations identical to transformers: %d of %zu\n", name.c_str(),
                matched, prompts.size());
    Results()["engine_greedy_vs_transformers"][name] = {{"identical", matched}, {"prompts", prompts.size()}};
  }
}

// Sampling on the GPU through the engine: a seed repeats its completion when the request runs alone again, and
// other seeds give others. Not across batch shapes: the FP8 GEMV takes another path at batch 1 than at 4
// (fp8_gemv.h), which moves logits in their last bits, and a draw near a boundary then goes the other way (measured:
// seed 7 alone and in a batch of 4 part after 12 tokens), so the requests here run one at a time.
TEST(CudaModelTest, EngineSeededSamplingRepeats) {
  ASSERT_TRUE(CudaDeviceAvailable());
  WorkerOptions options;
  options.model_dir = "models/qwen3_5-code-small";
  options.served_model_name = "small";
  options.device = "cuda";
  options.kv_cache_memory_bytes = int64_t{256} << 20;
  auto runtime = WorkerRuntime::Create(options);
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  auto generate = [&](const std::vector<uint64_t>& seeds) {
    std::vector<std::shared_ptr<Collect>> sinks;
    for (size_t i = 0; i < seeds.size(); ++i) {
      auto sink = std::make_shared<Collect>();
      EngineRequest r;
      r.request_id = absl::StrCat("seeded-", seeds[i], "-", i, "-", sinks.size());
      r.prompt_token_ids = {100, 200, 300, 400, 500};
      r.sampling.temperature = 0.9f;
      r.sampling.top_p = 0.95f;
      r.sampling.top_k = 40;
      r.sampling.seed = seeds[i];
      r.sampling.max_tokens = 48;
      r.sampling.ignore_eos = true;
      r.sink = sink;
      (*runtime)->engine().Submit(std::move(r));
      sinks.push_back(sink);
    }
    std::vector<std::vector<int32_t>> out;
    for (auto& s : sinks) out.push_back(s->Wait());
    return out;
  };
  const std::vector<int32_t> seven = generate({7})[0];
  ASSERT_EQ(seven.size(), 48u);
  EXPECT_EQ(generate({7})[0], seven);
  const std::vector<int32_t> eight = generate({8})[0];
  EXPECT_NE(eight, seven);
  EXPECT_EQ(generate({8})[0], eight);
  std::printf("[engine on gpu] seeded sampling: seeds 7 and 8 each repeat their %zu tokens; they differ\n",
              seven.size());
}

}  // namespace
}  // namespace octet
