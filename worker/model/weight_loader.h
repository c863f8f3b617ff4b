// WeightLoader: takes named tensors out of a checkpoint, checks their shapes, and uploads them to a backend —
// each linear layer in FP8 or 16-bit as the FP8 recipe decides for its role.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/checkpoint.h"
#include "worker/model/fp8_recipe.h"
#include "worker/model/synthetic_weights.h"
#include "worker/runtime/backend.h"

namespace octet {

// Bytes of weights as uploaded, for memory reports.
struct WeightStats {
  int64_t fp8_bytes = 0;    // FP8 values and their block scales
  int64_t other_bytes = 0;  // everything else, in the backend's dtypes
  int32_t fp8_layers = 0;
  int32_t other_layers = 0;  // linear layers not in FP8
};

class WeightLoader {
 public:
  // prefix is prepended to every name (e.g. "model.language_model." for multimodal wrappers).
  // An FP8 checkpoint (E4M3 weights with `<name>_scale_inv`) loads as it is under the official recipe; other
  // recipes quantize 16-bit weights at load or dequantize FP8 ones, as they need.
  WeightLoader(const Checkpoint& checkpoint, Backend& backend, std::string prefix = "",
               Fp8Recipe recipe = Fp8Recipe::kNone, WeightStats* stats = nullptr)
      : checkpoint_(checkpoint), backend_(backend), prefix_(std::move(prefix)), recipe_(recipe), stats_(stats) {}

  bool Has(std::string_view name) const;
  // A tensor of exactly `shape`, uploaded in the backend's compute dtype.
  absl::StatusOr<Tensor> Load(std::string_view name, const Shape& shape);
  absl::StatusOr<LinearWeight> LoadLinear(std::string_view name, int64_t out_features, int64_t in_features,
                                          LinearRole role);
  // Several [out_i, in] weights stacked along the output dim into one linear layer (e.g. gate and up).
  absl::StatusOr<LinearWeight> LoadStackedLinear(const std::vector<std::string>& names,
                                                 const std::vector<int64_t>& out_features, int64_t in_features,
                                                 LinearRole role);

 private:
  absl::StatusOr<const TensorView*> Find(std::string_view name, const Shape& shape, bool allow_fp8) const;
  // An FP8 tensor's weights dequantized to fp32 with its block scales.
  absl::StatusOr<std::vector<float>> Dequantize(const std::string& name, const TensorView& weight) const;
  absl::StatusOr<std::vector<float>> BlockScales(const std::string& name, int64_t out, int64_t in) const;
  void Count(const LinearWeight& w);
  // A synthetic checkpoint's linear layer: FP8 where the recipe says so, else bf16.
  absl::StatusOr<LinearWeight> SyntheticLinear(const std::vector<std::string>& names,
                                               const std::vector<int64_t>& out_features, int64_t in_features,
                                               LinearRole role);
  SyntheticSpec synthetic_spec() const;

  const Checkpoint& checkpoint_;
  Backend& backend_;
  std::string prefix_;
  Fp8Recipe recipe_;
  WeightStats* stats_;
};

}  // namespace octet
