// FP8 recipes: which linear layers run in FP8 (E4M3, 128x128 block scales) and which stay 16-bit.
//   official  Qwen's FP8 checkpoints: attention, Gated DeltaNet and MLP projections in FP8; norms, conv1d,
//             in_proj_a/b, embeddings and lm_head 16-bit. A pre-quantized checkpoint loads exactly as it is.
//   mlp-only  only the MLP in FP8 (attention and Gated DeltaNet projections kept 16-bit)
//   all       every linear layer in FP8, in_proj_a/b and lm_head included (embeddings stay 16-bit: a gather)
//   none      16-bit everywhere (FP8 checkpoints are dequantized at load)
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "worker/runtime/dtype.h"

namespace octet {

enum class Fp8Recipe { kNone, kOfficial, kMlpOnly, kAll };

// What a linear layer is, for deciding its precision.
enum class LinearRole {
  kAttention,            // q/k/v/o projections of full attention
  kLinearAttention,      // Gated DeltaNet in_proj_qkv, in_proj_z, out_proj
  kLinearAttentionGate,  // Gated DeltaNet in_proj_a, in_proj_b (tiny, precision-sensitive)
  kMlp,                  // gate/up/down projections
  kLmHead,
};

absl::StatusOr<Fp8Recipe> ParseFp8Recipe(std::string_view name);
std::string_view Fp8RecipeName(Fp8Recipe recipe);
// Whether `recipe` puts a layer of `role` in FP8.
bool UsesFp8(Fp8Recipe recipe, LinearRole role);

// "fp8" -> kF8E4M3, "bf16" -> kBF16, "fp32" -> kF32.
absl::StatusOr<DType> ParseKvCacheDtype(std::string_view name);

}  // namespace octet
