// Synthetic models: the true shapes of a named model (`--model synthetic:qwen3.5-27b`) with random weights, so
// benchmarks and memory reports need no download. Linear layers come in Qwen's official FP8 layout (E4M3 codes and
// one fp32 scale per 128x128 block) where the FP8 recipe puts them in FP8, else in bf16; other tensors in bf16.
// Values are scaled so activations stay O(1) through the layers (no NaN or overflow), not to mean anything.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace octet {

inline constexpr char kSyntheticPrefix[] = "synthetic:";

// config.json text for a preset: qwen3.5-27b, qwen3.5-27b-8l (its first 8 layers: quick GPU runs), qwen3.5-tiny
// (CI-sized), qwen3-32b. InvalidArgument naming the presets for anything else.
absl::StatusOr<std::string> SyntheticConfigJson(std::string_view preset);

struct SyntheticSpec {
  uint64_t seed = 0;
  bool offset_norms = false;  // RMSNorm weights are stored as w with scale 1 + w (Qwen3.5): fill 0, else 1
};

// A non-linear tensor by its checkpoint name (norm weights, embeddings, conv1d, A_log, dt_bias), as bf16 bits.
std::vector<uint16_t> SyntheticTensorBf16(std::string_view name, int64_t numel, const SyntheticSpec& spec);
// A linear layer [out, in] as bf16 bits, uniform with variance 1 / in.
std::vector<uint16_t> SyntheticLinearBf16(std::string_view name, int64_t out, int64_t in, const SyntheticSpec& spec);
// A linear layer [out, in] in FP8: E4M3 codes of magnitude below 2 and block scales [ceil(out/128), ceil(in/128)]
// that give the products variance ~1 / in.
void SyntheticLinearFp8(std::string_view name, int64_t out, int64_t in, const SyntheticSpec& spec,
                        std::vector<uint8_t>* codes, std::vector<float>* scales);

}  // namespace octet
