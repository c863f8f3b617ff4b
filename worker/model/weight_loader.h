// WeightLoader: takes named tensors out of a checkpoint, checks their shapes, and uploads them to a backend.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "worker/model/checkpoint.h"
#include "worker/runtime/backend.h"

namespace octet {

class WeightLoader {
 public:
  // prefix is prepended to every name (e.g. "model.language_model." for multimodal wrappers).
  WeightLoader(const Checkpoint& checkpoint, Backend& backend, std::string prefix = "")
      : checkpoint_(checkpoint), backend_(backend), prefix_(std::move(prefix)) {}

  bool Has(std::string_view name) const;
  // A tensor of exactly `shape`, uploaded in the backend's compute dtype.
  absl::StatusOr<Tensor> Load(std::string_view name, const Shape& shape);
  absl::StatusOr<LinearWeight> LoadLinear(std::string_view name, int64_t out_features, int64_t in_features);
  // Several [out_i, in] weights stacked along the output dim into one linear layer (e.g. gate and up).
  absl::StatusOr<LinearWeight> LoadStackedLinear(const std::vector<std::string>& names,
                                                 const std::vector<int64_t>& out_features, int64_t in_features);

 private:
  absl::StatusOr<const TensorView*> Find(std::string_view name, const Shape& shape) const;

  const Checkpoint& checkpoint_;
  Backend& backend_;
  std::string prefix_;
};

}  // namespace octet
