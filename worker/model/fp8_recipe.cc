#include "worker/model/fp8_recipe.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace octet {

absl::StatusOr<Fp8Recipe> ParseFp8Recipe(std::string_view name) {
  if (name == "none") return Fp8Recipe::kNone;
  if (name == "official") return Fp8Recipe::kOfficial;
  if (name == "mlp-only") return Fp8Recipe::kMlpOnly;
  if (name == "all") return Fp8Recipe::kAll;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown FP8 recipe '", std::string(name), "': expected official, mlp-only, all or none"));
}

std::string_view Fp8RecipeName(Fp8Recipe recipe) {
  switch (recipe) {
    case Fp8Recipe::kNone:
      return "none";
    case Fp8Recipe::kOfficial:
      return "official";
    case Fp8Recipe::kMlpOnly:
      return "mlp-only";
    case Fp8Recipe::kAll:
      return "all";
  }
  return "unknown";
}

bool UsesFp8(Fp8Recipe recipe, LinearRole role) {
  switch (recipe) {
    case Fp8Recipe::kNone:
      return false;
    case Fp8Recipe::kAll:
      return true;
    case Fp8Recipe::kMlpOnly:
      return role == LinearRole::kMlp;
    case Fp8Recipe::kOfficial:
      return role == LinearRole::kAttention || role == LinearRole::kLinearAttention || role == LinearRole::kMlp;
  }
  return false;
}

absl::StatusOr<DType> ParseKvCacheDtype(std::string_view name) {
  if (name == "fp8") return DType::kF8E4M3;
  if (name == "bf16") return DType::kBF16;
  if (name == "fp32") return DType::kF32;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown KV cache dtype '", std::string(name), "': expected fp8, bf16 or fp32"));
}

}  // namespace octet
