// The requests `octet bench` sends: random token-id prompts of chosen lengths, optionally behind a shared prefix.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace octet::bench {

// What the prompts look like; the flags of the same names.
struct WorkloadOptions {
  int32_t num_prompts = 100;
  int32_t input_len = 128;   // prompt tokens, shared prefix included
  int32_t output_len = 128;  // tokens to generate (max_tokens, with ignore_eos)
  // 0: every prompt has input_len tokens and asks for output_len. R in (0, 1): each length is drawn uniformly from
  // [floor(len * (1 - R)), ceil(len * (1 + R))], at least 1 (vLLM's random dataset).
  double random_range_ratio = 0.0;
  // The first shared_prefix_len tokens of every prompt are the same (a prefix-cache workload); the rest is random.
  int32_t shared_prefix_len = 0;
  uint64_t seed = 0;
};

// One request of the workload.
struct BenchPrompt {
  std::vector<int32_t> token_ids;
  int32_t max_tokens = 0;
};

// The inclusive range a length is drawn from under random_range_ratio.
struct LengthRange {
  int32_t min = 0;
  int32_t max = 0;
};
LengthRange InputLengthRange(const WorkloadOptions& options);
LengthRange OutputLengthRange(const WorkloadOptions& options);

// Prompt token ids are drawn from [0, PromptTokenIdLimit(vocab_size)): the lowest 90% of the vocabulary. Special
// tokens (end-of-sequence, chat markers, padding) sit at the top of the vocabularies octet serves (Qwen's start at
// 151643 of 151936; the bundled small model's at 8189 of 8192), so the prompts stay ordinary text tokens.
int32_t PromptTokenIdLimit(int32_t vocab_size);

// InvalidArgument naming the flag and the rule for options no model could serve (lengths < 1, a ratio outside
// [0, 1), a shared prefix longer than the shortest prompt).
absl::Status ValidateWorkload(const WorkloadOptions& options);
// InvalidArgument when the longest prompt plus the longest output does not fit context_length (the served model's
// context, from GetModelInfo), or when the vocabulary is empty.
absl::Status CheckWorkloadFitsModel(const WorkloadOptions& options, int32_t vocab_size, int32_t context_length);

// `count` prompts drawn from options (count may differ from num_prompts: warm-up requests come first). The same
// options, vocab_size and count always give the same prompts; every prompt starts with the same shared prefix.
std::vector<BenchPrompt> BuildPrompts(const WorkloadOptions& options, int32_t vocab_size, int32_t count);

}  // namespace octet::bench
