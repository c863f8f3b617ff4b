#include "worker/model/weight_loader.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "kernels/cpu/fp8.h"
#include "worker/model/synthetic_weights.h"

namespace octet {
namespace {

int64_t Blocks(int64_t n) { return (n + kFp8BlockSize - 1) / kFp8BlockSize; }

}  // namespace

bool WeightLoader::Has(std::string_view name) const {
  return checkpoint_.synthetic() || checkpoint_.Find(absl::StrCat(prefix_, std::string(name))) != nullptr;
}

absl::StatusOr<const TensorView*> WeightLoader::Find(std::string_view name, const Shape& shape, bool allow_fp8) const {
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
    case DType::kF8E4M3:
      if (allow_fp8) return t;
      [[fallthrough]];
    default:
      return absl::UnimplementedError(
          absl::StrCat("tensor ", full, " has dtype ", std::string(DTypeName(t->dtype)),
                       allow_fp8 ? "; expected fp32, bf16, fp16 or fp8_e4m3" : "; expected fp32, bf16 or fp16"));
  }
}

SyntheticSpec WeightLoader::synthetic_spec() const {
  return SyntheticSpec{checkpoint_.synthetic_seed(), checkpoint_.synthetic_offset_norms()};
}

absl::StatusOr<Tensor> WeightLoader::Load(std::string_view name, const Shape& shape) {
  if (checkpoint_.synthetic()) {
    const std::vector<uint16_t> v =
        SyntheticTensorBf16(absl::StrCat(prefix_, std::string(name)), ShapeNumel(shape), synthetic_spec());
    if (stats_) stats_->other_bytes += static_cast<int64_t>(ShapeNumel(shape) * DTypeSize(backend_.compute_dtype()));
    return backend_.Upload(DType::kBF16, v.data(), shape);
  }
  OCTET_ASSIGN_OR_RETURN(const TensorView* t, Find(name, shape, /*allow_fp8=*/false));
  if (stats_) stats_->other_bytes += static_cast<int64_t>(t->numel() * DTypeSize(backend_.compute_dtype()));
  return backend_.Upload(t->dtype, t->data, shape);
}

absl::StatusOr<std::vector<float>> WeightLoader::BlockScales(const std::string& name, int64_t out, int64_t in) const {
  const std::string scale_name = absl::StrCat(prefix_, name, "_scale_inv");
  const TensorView* s = checkpoint_.Find(scale_name);
  if (s == nullptr) {
    return absl::NotFoundError(absl::StrCat("FP8 tensor ", prefix_, name, " has no ", scale_name));
  }
  if (s->shape.size() != 2 || s->shape[0] != Blocks(out) || s->shape[1] != Blocks(in)) {
    return absl::InvalidArgumentError(absl::StrCat(scale_name, " has shape [", absl::StrJoin(s->shape, ", "),
                                                   "]; 128x128 blocks of [", out, ", ", in, "] need [", Blocks(out),
                                                   ", ", Blocks(in), "]"));
  }
  return ReadAsFloat32(*s);
}

absl::StatusOr<std::vector<float>> WeightLoader::Dequantize(const std::string& name, const TensorView& w) const {
  const int64_t out = w.shape[0], in = w.shape[1];
  OCTET_ASSIGN_OR_RETURN(std::vector<float> scales, BlockScales(name, out, in));
  std::vector<float> values(static_cast<size_t>(out * in));
  cpu::DequantizeWeightFp8(reinterpret_cast<const uint8_t*>(w.data), scales.data(), out, in, values.data());
  return values;
}

absl::StatusOr<LinearWeight> WeightLoader::LoadLinear(std::string_view name, int64_t out_features, int64_t in_features,
                                                      LinearRole role) {
  return LoadStackedLinear({std::string(name)}, {out_features}, in_features, role);
}

absl::StatusOr<LinearWeight> WeightLoader::LoadStackedLinear(const std::vector<std::string>& names,
                                                             const std::vector<int64_t>& out_features,
                                                             int64_t in_features, LinearRole role) {
  if (checkpoint_.synthetic()) return SyntheticLinear(names, out_features, in_features, role);
  std::vector<const TensorView*> parts;
  int64_t total_out = 0;
  bool aligned = true;  // every part after the first starts on a 128-row block boundary of the stack
  for (size_t i = 0; i < names.size(); ++i) {
    OCTET_ASSIGN_OR_RETURN(const TensorView* t, Find(names[i], {out_features[i], in_features}, /*allow_fp8=*/true));
    if (!parts.empty() && t->dtype != parts[0]->dtype) {
      return absl::InvalidArgumentError(absl::StrCat("tensors ", absl::StrJoin(names, ", "), " differ in dtype"));
    }
    if (i + 1 < names.size() && out_features[i] % kFp8BlockSize != 0) aligned = false;
    parts.push_back(t);
    total_out += out_features[i];
  }
  const Shape shape = {total_out, in_features};
  const bool prequantized = parts[0]->dtype == DType::kF8E4M3;
  // A pre-quantized checkpoint decides for itself under the official recipe; other recipes decide by role.
  const bool fp8 = (recipe_ == Fp8Recipe::kOfficial && prequantized) || UsesFp8(recipe_, role);

  LinearWeight w;
  if (!fp8) {
    if (prequantized) {  // dequantize with the block scales
      std::vector<float> stacked;
      for (size_t i = 0; i < parts.size(); ++i) {
        OCTET_ASSIGN_OR_RETURN(std::vector<float> d, Dequantize(names[i], *parts[i]));
        stacked.insert(stacked.end(), d.begin(), d.end());
      }
      w = backend_.UploadLinear(DType::kF32, stacked.data(), shape);
    } else {
      std::vector<std::byte> stacked;
      for (const TensorView* p : parts) stacked.insert(stacked.end(), p->data, p->data + p->nbytes);
      w = backend_.UploadLinear(parts[0]->dtype, stacked.data(), shape);
    }
    Count(w);
    return w;
  }

  // FP8: each part in its own 128x128 blocks, as the official checkpoints quantize every module; a checkpoint's
  // values and scales are taken as they are.
  std::vector<uint8_t> values;
  std::vector<float> scales;
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t out = out_features[i];
    if (prequantized) {
      const auto* q = reinterpret_cast<const uint8_t*>(parts[i]->data);
      values.insert(values.end(), q, q + parts[i]->nbytes);
      OCTET_ASSIGN_OR_RETURN(std::vector<float> s, BlockScales(names[i], out, in_features));
      scales.insert(scales.end(), s.begin(), s.end());
    } else {
      OCTET_ASSIGN_OR_RETURN(std::vector<float> f, ReadAsFloat32(*parts[i]));
      std::vector<uint8_t> q(f.size());
      std::vector<float> s(static_cast<size_t>(cpu::Fp8NumBlocks(out) * cpu::Fp8NumBlocks(in_features)));
      cpu::QuantizeWeightFp8(f.data(), out, in_features, q.data(), s.data());
      values.insert(values.end(), q.begin(), q.end());
      scales.insert(scales.end(), s.begin(), s.end());
    }
  }
  if (!aligned) {
    // The parts' blocks do not tile the stack (a part's row count is not a multiple of 128): requantize the
    // dequantized stack in the stack's own blocks. Real Qwen sizes are multiples of 128 and never get here.
    std::vector<float> stacked(values.size());
    int64_t row = 0, scale_row = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      cpu::DequantizeWeightFp8(values.data() + row * in_features,
                               scales.data() + scale_row * cpu::Fp8NumBlocks(in_features), out_features[i], in_features,
                               stacked.data() + row * in_features);
      row += out_features[i];
      scale_row += cpu::Fp8NumBlocks(out_features[i]);
    }
    scales.assign(static_cast<size_t>(cpu::Fp8NumBlocks(total_out) * cpu::Fp8NumBlocks(in_features)), 0.0f);
    cpu::QuantizeWeightFp8(stacked.data(), total_out, in_features, values.data(), scales.data());
  }
  w = backend_.UploadLinearFp8(values.data(), scales.data(), shape);
  Count(w);
  return w;
}

absl::StatusOr<LinearWeight> WeightLoader::SyntheticLinear(const std::vector<std::string>& names,
                                                           const std::vector<int64_t>& out_features,
                                                           int64_t in_features, LinearRole role) {
  int64_t total_out = 0;
  for (int64_t o : out_features) total_out += o;
  const std::string name = absl::StrCat(prefix_, absl::StrJoin(names, "+"));
  LinearWeight w;
  if (UsesFp8(recipe_, role)) {
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    SyntheticLinearFp8(name, total_out, in_features, synthetic_spec(), &codes, &scales);
    w = backend_.UploadLinearFp8(codes.data(), scales.data(), {total_out, in_features});
  } else {
    const std::vector<uint16_t> v = SyntheticLinearBf16(name, total_out, in_features, synthetic_spec());
    w = backend_.UploadLinear(DType::kBF16, v.data(), {total_out, in_features});
  }
  Count(w);
  return w;
}

void WeightLoader::Count(const LinearWeight& w) {
  if (stats_ == nullptr) return;
  if (w.fp8()) {
    stats_->fp8_bytes += static_cast<int64_t>(w.weight.nbytes() + w.scale.nbytes());
    ++stats_->fp8_layers;
  } else {
    stats_->other_bytes += static_cast<int64_t>(w.weight.nbytes());
    ++stats_->other_layers;
  }
}

}  // namespace octet
