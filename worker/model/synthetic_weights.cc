#include "worker/model/synthetic_weights.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/runtime/dtype.h"

namespace octet {
namespace {

// Qwen3.5-27B's text model (hidden 5120, 64 layers: 3 Gated DeltaNet then 1 gated attention, repeated).
std::string Qwen35Config(int layers, int hidden, int inter, int heads, int kv_heads, int head_dim, int lin_k_heads,
                         int lin_v_heads, int lin_dim, int vocab, int max_pos) {
  std::vector<std::string> types;
  for (int i = 0; i < layers; ++i) types.push_back((i + 1) % 4 == 0 ? "\"full_attention\"" : "\"linear_attention\"");
  return absl::StrCat(R"({"architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text", "dtype": "bfloat16",
    "hidden_size": )",
                      hidden, R"(, "intermediate_size": )", inter, R"(, "num_hidden_layers": )", layers,
                      R"(, "num_attention_heads": )", heads, R"(, "num_key_value_heads": )", kv_heads,
                      R"(, "head_dim": )", head_dim, R"(, "linear_num_key_heads": )", lin_k_heads,
                      R"(, "linear_num_value_heads": )", lin_v_heads, R"(, "linear_key_head_dim": )", lin_dim,
                      R"(, "linear_value_head_dim": )", lin_dim, R"(, "linear_conv_kernel_dim": 4, "vocab_size": )",
                      vocab, R"(, "max_position_embeddings": )", max_pos,
                      R"(, "rms_norm_eps": 1e-06, "tie_word_embeddings": false, "attn_output_gate": true,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0, "partial_rotary_factor": 0.25},
    "eos_token_id": )",
                      vocab > 248044 ? 248044 : vocab - 1, R"(, "layer_types": [)", absl::StrJoin(types, ", "), "]}");
}

// Qwen3-32B (hidden 5120, 64 layers, GQA 64/8, head_dim 128).
std::string Qwen3Config() {
  return R"({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "dtype": "bfloat16", "hidden_size": 5120,
    "intermediate_size": 25600, "num_hidden_layers": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
    "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "tie_word_embeddings": false, "eos_token_id": 151645})";
}

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t NameSeed(std::string_view name, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
  return Mix(h);
}

// fill(i, random) for i in [0, n): chunks of 1M elements, each with its own stream, over all cores; the result
// does not depend on the number of threads.
void ParallelFill(int64_t n, uint64_t seed, const std::function<void(int64_t, uint64_t)>& fill) {
  constexpr int64_t kChunk = int64_t{1} << 20;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 64);
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < std::min(threads, chunks); ++t) {
    pool.emplace_back([&, t] {
      for (int64_t c = t; c < chunks; c += threads) {
        uint64_t state = Mix(seed + static_cast<uint64_t>(c) * 0x9e3779b97f4a7c15ull);
        for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
          state += 0x9e3779b97f4a7c15ull;
          fill(i, Mix(state));
        }
      }
    });
  }
  for (std::thread& th : pool) th.join();
}

// Uniform in [-1, 1) from 24 random bits.
float Uniform(uint64_t r) { return static_cast<float>(r >> 40) * 0x1p-23f - 1.0f; }

std::vector<uint16_t> UniformBf16(int64_t n, uint64_t seed, float lo, float hi) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  ParallelFill(n, seed, [&](int64_t i, uint64_t r) {
    out[static_cast<size_t>(i)] = FloatToBF16(lo + (hi - lo) * 0.5f * (Uniform(r) + 1.0f));
  });
  return out;
}

}  // namespace

absl::StatusOr<std::string> SyntheticConfigJson(std::string_view preset) {
  if (preset == "qwen3.5-27b") return Qwen35Config(64, 5120, 17408, 24, 4, 256, 16, 48, 128, 248320, 262144);
  if (preset == "qwen3.5-27b-8l") return Qwen35Config(8, 5120, 17408, 24, 4, 256, 16, 48, 128, 248320, 262144);
  if (preset == "qwen3.5-tiny") return Qwen35Config(4, 256, 512, 4, 2, 64, 2, 4, 32, 8192, 4096);
  if (preset == "qwen3-32b") return Qwen3Config();
  return absl::InvalidArgumentError(absl::StrCat("unknown synthetic model \"", std::string(preset),
                                                 "\"; presets: qwen3.5-27b, qwen3.5-27b-8l, qwen3.5-tiny, qwen3-32b"));
}

std::vector<uint16_t> SyntheticTensorBf16(std::string_view name, int64_t numel, const SyntheticSpec& spec) {
  const std::string n(name);
  const uint64_t seed = NameSeed(name, spec.seed);
  if (absl::EndsWith(n, "norm.weight")) {
    // Gated DeltaNet's output norm is plain (w * x); the others are offset (1 + w) in Qwen3.5.
    const bool offset = spec.offset_norms && !absl::StrContains(n, "linear_attn.norm");
    return std::vector<uint16_t>(static_cast<size_t>(numel), FloatToBF16(offset ? 0.0f : 1.0f));
  }
  if (absl::EndsWith(n, "A_log")) return UniformBf16(numel, seed, 0.0f, 2.7f);      // A in [1, 15]
  if (absl::EndsWith(n, "dt_bias")) return UniformBf16(numel, seed, -5.0f, -2.0f);  // softplus: small steps
  if (absl::EndsWith(n, "conv1d.weight")) return UniformBf16(numel, seed, -0.5f, 0.5f);
  return UniformBf16(numel, seed, -1.0f, 1.0f);  // embeddings: the first norm rescales them
}

std::vector<uint16_t> SyntheticLinearBf16(std::string_view name, int64_t out, int64_t in, const SyntheticSpec& spec) {
  const float a = std::sqrt(3.0f / static_cast<float>(in));
  return UniformBf16(out * in, NameSeed(name, spec.seed), -a, a);
}

void SyntheticLinearFp8(std::string_view name, int64_t out, int64_t in, const SyntheticSpec& spec,
                        std::vector<uint8_t>* codes, std::vector<float>* scales) {
  codes->resize(static_cast<size_t>(out * in));
  // Sign, exponent field 0..7, any mantissa: |value| < 2, mean square ~0.22 over the 64 magnitudes.
  ParallelFill(out * in, NameSeed(name, spec.seed),
               [&](int64_t i, uint64_t r) { (*codes)[static_cast<size_t>(i)] = static_cast<uint8_t>(r >> 56) & 0xBF; });
  const int64_t blocks = ((out + 127) / 128) * ((in + 127) / 128);
  scales->assign(static_cast<size_t>(blocks), 1.0f / std::sqrt(0.22f * static_cast<float>(in)));
}

}  // namespace octet
