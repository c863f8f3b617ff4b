#include "worker/eval/evaluator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "worker/engine/model_runner.h"
#include "worker/model/model_factory.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet::eval {
namespace {

constexpr int32_t kBlockSize = 16;
constexpr int32_t kDefaultMaxWindow = 512;

std::string ModelName(const std::string& model_dir) {
  std::filesystem::path path = std::filesystem::path(model_dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "dir/" normalizes to "dir/" with an empty filename
  return path.filename().string();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read text file ", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return text;
}

}  // namespace

std::vector<float> ModelLogitSource::WindowLogits(absl::Span<const int32_t> ids) {
  const int32_t t = static_cast<int32_t>(ids.size());
  const int32_t num_blocks = (t + kBlockSize - 1) / kBlockSize;
  KvCache cache =
      AllocateKvCache(backend_, model_.kv_cache_spec(), num_blocks, kBlockSize, /*num_state_slots=*/1, kv_dtype_);
  std::vector<int32_t> table(num_blocks);
  for (int32_t i = 0; i < num_blocks; ++i) table[i] = i;
  const ForwardBatch batch = SequenceBatch(backend_, ids, /*start=*/0, table, kBlockSize, /*state_slot=*/0);
  Tensor logits = model_.Forward(batch, cache);  // [t, vocab]
  std::vector<float> out(static_cast<size_t>(logits.numel()));
  backend_.Download(logits, out.data());
  return out;
}

Evaluator::Evaluator(std::vector<LogitSource*> sources, int num_threads)
    : sources_(std::move(sources)),
      num_threads_(std::clamp(num_threads, 1, std::max(1, static_cast<int>(sources_.size())))),
      metrics_(sources_.size()),
      forward_seconds_(sources_.size(), 0.0) {
  OCTET_CHECK(!sources_.empty());
  for (const LogitSource* s : sources_) OCTET_CHECK(s->vocab_size() == sources_[0]->vocab_size());
}

void Evaluator::AddWindow(absl::Span<const int32_t> ids) {
  if (ids.size() < 2) return;
  const absl::Span<const int32_t> targets = ids.subspan(1);
  const int32_t vocab = sources_[0]->vocab_size();

  // Source 0 (the baseline) is always claimed first, so a thread waiting for its logits never waits on itself.
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable baseline_ready;
  std::vector<float> baseline;
  bool have_baseline = false;

  auto work = [&] {
    for (size_t i = next++; i < sources_.size(); i = next++) {
      const auto start = std::chrono::steady_clock::now();
      std::vector<float> logits = sources_[i]->WindowLogits(ids);
      forward_seconds_[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      OCTET_CHECK(logits.size() == ids.size() * static_cast<size_t>(vocab))
          << "source " << i << " returned " << logits.size() << " logits for " << ids.size() << " tokens";
      if (i == 0) {
        AccumulateWindow(logits, logits, targets, vocab, metrics_[0]);
        std::lock_guard<std::mutex> lock(mu);
        baseline = std::move(logits);
        have_baseline = true;
        baseline_ready.notify_all();
      } else {
        {
          std::unique_lock<std::mutex> lock(mu);
          baseline_ready.wait(lock, [&] { return have_baseline; });
        }
        AccumulateWindow(baseline, logits, targets, vocab, metrics_[i]);  // baseline is read-only from here on
      }
    }
  };

  std::vector<std::thread> helpers;
  for (int t = 1; t < num_threads_; ++t) helpers.emplace_back(work);
  work();
  for (std::thread& t : helpers) t.join();
}

std::vector<std::pair<int64_t, int64_t>> SplitWindows(int64_t num_tokens, int64_t window) {
  OCTET_CHECK(window >= 2) << "window " << window;
  std::vector<std::pair<int64_t, int64_t>> windows;
  for (int64_t begin = 0; num_tokens - begin >= 2; begin += window) {
    windows.emplace_back(begin, std::min(begin + window, num_tokens));
  }
  return windows;
}

std::string KvDtypeName(DType kv_dtype) {
  switch (kv_dtype) {
    case DType::kF8E4M3:
      return "fp8";
    case DType::kBF16:
      return "bf16";
    case DType::kF32:
      return "fp32";
    default:
      return std::string(DTypeName(kv_dtype));
  }
}

std::string SettingName(const EvalSetting& setting) {
  return absl::StrCat(std::string(Fp8RecipeName(setting.recipe)), "/", KvDtypeName(setting.kv_dtype));
}

std::vector<EvalSetting> SettingGrid(const std::vector<Fp8Recipe>& recipes, const std::vector<DType>& kv_dtypes) {
  std::vector<EvalSetting> grid = {kBaselineSetting};
  for (Fp8Recipe recipe : recipes) {
    for (DType kv : kv_dtypes) {
      const EvalSetting s{recipe, kv};
      if (std::find(grid.begin(), grid.end(), s) == grid.end()) grid.push_back(s);
    }
  }
  return grid;
}

absl::StatusOr<EvalResult> RunEval(const EvalOptions& options, Backend& backend) {
  if (options.settings.empty() || !(options.settings[0] == kBaselineSetting)) {
    return absl::InvalidArgumentError("the first setting must be the baseline none/bf16");
  }
  EvalResult result;
  result.model_name = ModelName(options.model_dir);
  result.model_dir = options.model_dir;
  result.text_path = options.text_path;
  result.backend = std::string(backend.name());

  OCTET_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                         Tokenizer::FromFile(options.model_dir + "/tokenizer.json"));
  OCTET_ASSIGN_OR_RETURN(const std::string text, ReadFile(options.text_path));
  std::vector<int32_t> ids = tokenizer->Encode(text, /*add_special_tokens=*/false);
  result.text_tokens = static_cast<int64_t>(ids.size());
  if (options.max_tokens > 0 && static_cast<int64_t>(ids.size()) > options.max_tokens) {
    ids.resize(static_cast<size_t>(options.max_tokens));
  }
  result.num_tokens = static_cast<int64_t>(ids.size());
  if (ids.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.text_path, " has ", ids.size(), " tokens; at least 2 are needed to score one"));
  }

  // One model per recipe; settings that differ only in KV dtype share it.
  std::vector<std::pair<Fp8Recipe, LoadedModel>> models;
  for (const EvalSetting& s : options.settings) {
    const bool loaded = std::any_of(models.begin(), models.end(), [&](const auto& m) { return m.first == s.recipe; });
    if (loaded) continue;
    OCTET_LOG(INFO, "eval") << "loading " << options.model_dir << " with FP8 recipe " << Fp8RecipeName(s.recipe);
    OCTET_ASSIGN_OR_RETURN(LoadedModel model, LoadModel(options.model_dir, backend, LoadOptions{.recipe = s.recipe}));
    models.emplace_back(s.recipe, std::move(model));
  }
  const LoadedModel& first = models.front().second;
  const int64_t context =
      first.config.max_position_embeddings > 0 ? first.config.max_position_embeddings : int64_t{kDefaultMaxWindow};
  result.window =
      options.window > 0 ? options.window : static_cast<int32_t>(std::min<int64_t>(context, kDefaultMaxWindow));
  if (result.window < 2 || result.window > context) {
    return absl::InvalidArgumentError(
        absl::StrCat("window must be in [2, ", context, "] (the model's context), got ", result.window));
  }
  const int32_t vocab = first.model->vocab_size();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " of the tokenizer is outside the model's ", vocab, "-token vocabulary"));
    }
  }

  std::vector<std::unique_ptr<ModelLogitSource>> owned;
  std::vector<LogitSource*> sources;
  for (const EvalSetting& s : options.settings) {
    const LoadedModel& m =
        std::find_if(models.begin(), models.end(), [&](const auto& x) { return x.first == s.recipe; })->second;
    owned.push_back(std::make_unique<ModelLogitSource>(*m.model, backend, s.kv_dtype));
    sources.push_back(owned.back().get());

    SettingResult r;
    r.setting = s;
    const int64_t compute_size = static_cast<int64_t>(DTypeSize(backend.compute_dtype()));
    r.fp8_weight_bytes = m.weight_stats.fp8_bytes;
    r.weight_bytes = m.weight_stats.fp8_bytes + m.weight_stats.other_bytes / compute_size * 2;
    r.fp8_layers = m.weight_stats.fp8_layers;
    r.other_layers = m.weight_stats.other_layers;
    const KvCacheSpec spec = m.model->kv_cache_spec();
    r.kv_bytes_per_token = spec.BytesPerToken(s.kv_dtype);
    r.state_bytes_per_sequence = spec.BytesPerStateSlot(DType::kBF16);
    result.settings.push_back(r);
  }

  Evaluator evaluator(sources, options.num_threads);
  const std::vector<std::pair<int64_t, int64_t>> windows = SplitWindows(result.num_tokens, result.window);
  result.num_windows = static_cast<int64_t>(windows.size());
  OCTET_LOG(INFO, "eval") << result.num_tokens << " tokens in " << windows.size() << " windows of " << result.window
                          << ", " << sources.size() << " settings on " << options.num_threads << " thread(s)";
  for (size_t w = 0; w < windows.size(); ++w) {
    const auto [begin, end] = windows[w];
    evaluator.AddWindow(absl::MakeConstSpan(ids).subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)));
    if (options.progress) options.progress(static_cast<int64_t>(w + 1), result.num_windows);
  }
  for (size_t i = 0; i < result.settings.size(); ++i) {
    result.settings[i].metrics = evaluator.metrics()[i];
    result.settings[i].forward_seconds = evaluator.forward_seconds()[i];
  }
  result.scored_positions = result.settings[0].metrics.num_positions;
  return result;
}

}  // namespace octet::eval
