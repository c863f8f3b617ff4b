// Evaluator: teacher-forced evaluation of one model under several FP8 settings (weight recipe x KV cache dtype)
// on the same text, window by window, each setting scored against the BF16 baseline's logits of the same window.
//
//   text ─ tokenizer.json ─► ids ─ non-overlapping windows ─► every setting's logits [window, vocab]
//        ─► perplexity, KL(P_baseline || P_setting), top-1 agreement per setting (only one window's logits live)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/eval/metrics.h"
#include "worker/model/fp8_recipe.h"
#include "worker/model/model.h"
#include "worker/runtime/backend.h"

namespace octet::eval {

// Next-token logits for every position of a window of token ids, run from an empty cache.
class LogitSource {
 public:
  virtual ~LogitSource() = default;
  virtual int32_t vocab_size() const = 0;
  // fp32 logits [ids.size(), vocab_size()], row p predicting the token after ids[p].
  virtual std::vector<float> WindowLogits(absl::Span<const int32_t> ids) = 0;
};

// A model on a backend; each window gets a fresh paged KV cache of `kv_dtype` (and a fresh recurrent state) and
// runs as one prefill. Thread-compatible: concurrent calls on different sources are fine when the backend's ops
// are (the CPU backend's are).
class ModelLogitSource final : public LogitSource {
 public:
  ModelLogitSource(Model& model, Backend& backend, DType kv_dtype)
      : model_(model), backend_(backend), kv_dtype_(kv_dtype) {}
  int32_t vocab_size() const override { return model_.vocab_size(); }
  std::vector<float> WindowLogits(absl::Span<const int32_t> ids) override;

 private:
  Model& model_;
  Backend& backend_;
  DType kv_dtype_;
};

// Scores windows on several sources at once; sources[0] is the baseline every other source is compared with.
// Memory: the logits of at most (num_threads + 1) sources for one window.
class Evaluator {
 public:
  Evaluator(std::vector<LogitSource*> sources, int num_threads);

  // Scores positions 0 .. ids.size() - 2 of one window (position p predicts ids[p + 1]) on every source.
  void AddWindow(absl::Span<const int32_t> ids);

  // One entry per source, in the order given.
  const std::vector<Metrics>& metrics() const { return metrics_; }
  // Wall time spent in each source's forwards, seconds.
  const std::vector<double>& forward_seconds() const { return forward_seconds_; }

 private:
  std::vector<LogitSource*> sources_;
  int num_threads_;
  std::vector<Metrics> metrics_;
  std::vector<double> forward_seconds_;
};

// [begin, end) token ranges of consecutive non-overlapping windows of `window` tokens covering `num_tokens`; a
// last partial window is kept when it has at least 2 tokens (one scored position).
std::vector<std::pair<int64_t, int64_t>> SplitWindows(int64_t num_tokens, int64_t window);

// One evaluated configuration.
struct EvalSetting {
  Fp8Recipe recipe = Fp8Recipe::kNone;
  DType kv_dtype = DType::kBF16;
  bool operator==(const EvalSetting&) const = default;
};
// The reference every setting is compared with: 16-bit weights, BF16 KV cache.
inline constexpr EvalSetting kBaselineSetting = {Fp8Recipe::kNone, DType::kBF16};

// "fp8", "bf16", "fp32" (the spelling ParseKvCacheDtype accepts).
std::string KvDtypeName(DType kv_dtype);
// "official/fp8": recipe / KV cache dtype.
std::string SettingName(const EvalSetting& setting);
// Every recipe x every KV dtype, recipes outer, baseline first (added when the grid lacks it), no duplicates.
std::vector<EvalSetting> SettingGrid(const std::vector<Fp8Recipe>& recipes, const std::vector<DType>& kv_dtypes);

struct EvalOptions {
  std::string model_dir;
  std::string text_path;
  std::vector<EvalSetting> settings;  // from SettingGrid: settings[0] must be kBaselineSetting
  int32_t window = 0;                 // tokens a window; 0: min(model context, 512)
  int64_t max_tokens = 0;             // evaluate only the first max_tokens tokens of the text; 0: all
  int num_threads = 1;                // settings of a window run concurrently on this many threads
  // Called after each window with (windows done, windows in all); from the calling thread.
  std::function<void(int64_t, int64_t)> progress;
};

struct SettingResult {
  EvalSetting setting;
  Metrics metrics;
  // Weights as a 16-bit serving backend holds them: FP8 layers' values and block scales, everything else at
  // 2 bytes an element (the CPU backend keeps fp32 copies; its own byte count is not what deployment costs).
  int64_t weight_bytes = 0;
  int64_t fp8_weight_bytes = 0;  // of weight_bytes
  int32_t fp8_layers = 0;
  int32_t other_layers = 0;              // linear layers kept 16-bit
  int64_t kv_bytes_per_token = 0;        // K and V of every full-attention layer, with FP8 scales
  int64_t state_bytes_per_sequence = 0;  // hybrid models: recurrent + conv state of one sequence (conv in 16-bit)
  double forward_seconds = 0;
};

struct EvalResult {
  std::string model_name;  // the model folder's name
  std::string model_dir;
  std::string text_path;
  std::string backend;      // "cpu"
  int64_t text_tokens = 0;  // tokens of the whole text
  int64_t num_tokens = 0;   // tokens evaluated (after max_tokens)
  int32_t window = 0;
  int64_t num_windows = 0;
  int64_t scored_positions = 0;         // per setting: num_tokens - num_windows
  std::vector<SettingResult> settings;  // settings[0] is the baseline
};

// Tokenizes the text with the model folder's tokenizer.json (no special tokens added), loads the model once per
// recipe on `backend`, and scores every window under every setting.
absl::StatusOr<EvalResult> RunEval(const EvalOptions& options, Backend& backend);

}  // namespace octet::eval
