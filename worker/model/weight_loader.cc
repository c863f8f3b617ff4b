#include "worker/model/weight_loader.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace octet {

bool WeightLoader::Has(std::string_view name) const {
  return checkpoint_.Find(absl::StrCat(prefix_, std::string(name))) != nullptr;
}

absl::StatusOr<const TensorView*> WeightLoader::Find(std::string_view name, const Shape& shape) const {
  const std::string full = absl::StrCat(prefix_, std::string(name));
  const TensorView* t = checkpoint_.Find(full);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat("checkpoint has no tensor ", full));
  const bool same = t->shape.size() == shape.size() && std::equal(t->shape.begin(), t->shape.end(), shape.begin());
  if (!same) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", full, " has shape [", absl::StrJoin(t->shape, ", "),
                                                   "], config.json implies ", ShapeToString(shape)));
  }
  switch (t->dtype) {
    case DType::kF32:
    case DType::kBF16:
    case DType::kF16:
      return t;
    default:
      return absl::UnimplementedError(
          absl::StrCat("tensor ", full, " has dtype ", std::string(DTypeName(t->dtype)), "; expected fp32, bf16 or fp16"));
  }
}

absl::StatusOr<Tensor> WeightLoader::Load(std::string_view name, const Shape& shape) {
  absl::StatusOr<const TensorView*> t = Find(name, shape);
  if (!t.ok()) return t.status();
  return backend_.Upload((*t)->dtype, (*t)->data, shape);
}

absl::StatusOr<LinearWeight> WeightLoader::LoadLinear(std::string_view name, int64_t out_features,
                                                      int64_t in_features) {
  const Shape shape = {out_features, in_features};
  absl::StatusOr<const TensorView*> t = Find(name, shape);
  if (!t.ok()) return t.status();
  return backend_.UploadLinear((*t)->dtype, (*t)->data, shape);
}

absl::StatusOr<LinearWeight> WeightLoader::LoadStackedLinear(const std::vector<std::string>& names,
                                                             const std::vector<int64_t>& out_features,
                                                             int64_t in_features) {
  std::vector<const TensorView*> parts;
  int64_t total_out = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StatusOr<const TensorView*> t = Find(names[i], {out_features[i], in_features});
    if (!t.ok()) return t.status();
    if (!parts.empty() && (*t)->dtype != parts[0]->dtype) {
      return absl::InvalidArgumentError(absl::StrCat("tensors ", absl::StrJoin(names, ", "), " differ in dtype"));
    }
    parts.push_back(*t);
    total_out += out_features[i];
  }
  // Stack on the host, then upload once.
  std::vector<std::byte> stacked;
  for (const TensorView* p : parts) stacked.insert(stacked.end(), p->data, p->data + p->nbytes);
  return backend_.UploadLinear(parts[0]->dtype, stacked.data(), {total_out, in_features});
}

}  // namespace octet
