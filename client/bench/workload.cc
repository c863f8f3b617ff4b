#include "client/bench/workload.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace octet::bench {
namespace {

LengthRange RangeAround(int32_t len, double ratio) {
  constexpr double kSlack = 1e-9;  // 100 * (1 + 0.1) is 110.00000000000001 in doubles: still 110
  const int64_t lo = static_cast<int64_t>(std::floor(len * (1.0 - ratio) + kSlack));
  const int64_t hi = static_cast<int64_t>(std::ceil(len * (1.0 + ratio) - kSlack));
  return {.min = static_cast<int32_t>(std::max<int64_t>(lo, 1)), .max = static_cast<int32_t>(std::max<int64_t>(hi, 1))};
}

}  // namespace

LengthRange InputLengthRange(const WorkloadOptions& options) {
  return RangeAround(options.input_len, options.random_range_ratio);
}

LengthRange OutputLengthRange(const WorkloadOptions& options) {
  return RangeAround(options.output_len, options.random_range_ratio);
}

int32_t PromptTokenIdLimit(int32_t vocab_size) {
  return std::max<int32_t>(1, static_cast<int32_t>(static_cast<int64_t>(vocab_size) * 9 / 10));
}

absl::Status ValidateWorkload(const WorkloadOptions& options) {
  if (options.num_prompts < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--num-prompts must be >= 1, got ", options.num_prompts));
  }
  if (options.input_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--input-len must be >= 1, got ", options.input_len));
  }
  if (options.output_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--output-len must be >= 1, got ", options.output_len));
  }
  if (!(options.random_range_ratio >= 0.0 && options.random_range_ratio < 1.0)) {  // also rejects NaN
    return absl::InvalidArgumentError(
        absl::StrCat("--random-range-ratio must be in [0, 1), got ", options.random_range_ratio));
  }
  if (options.shared_prefix_len < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shared-prefix-len must be >= 0, got ", options.shared_prefix_len));
  }
  if (const int32_t shortest = InputLengthRange(options).min; options.shared_prefix_len > shortest) {
    return absl::InvalidArgumentError(absl::StrCat("--shared-prefix-len ", options.shared_prefix_len,
                                                   " is longer than the shortest prompt (", shortest,
                                                   " tokens): the prefix is part of --input-len"));
  }
  return absl::OkStatus();
}

absl::Status CheckWorkloadFitsModel(const WorkloadOptions& options, int32_t vocab_size, int32_t context_length) {
  if (vocab_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("the server reports a vocabulary of ", vocab_size, " tokens"));
  }
  const int64_t longest_input = InputLengthRange(options).max;
  const int64_t longest_output = OutputLengthRange(options).max;
  if (longest_input + longest_output > context_length) {
    const bool ranged = options.random_range_ratio > 0.0;
    return absl::InvalidArgumentError(absl::StrCat(
        "--input-len ", options.input_len, ranged ? absl::StrCat(" (up to ", longest_input, ")") : "",
        " plus --output-len ", options.output_len, ranged ? absl::StrCat(" (up to ", longest_output, ")") : "",
        " tokens does not fit the model's context of ", context_length, " tokens"));
  }
  return absl::OkStatus();
}

std::vector<BenchPrompt> BuildPrompts(const WorkloadOptions& options, int32_t vocab_size, int32_t count) {
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int32_t> token(0, PromptTokenIdLimit(vocab_size) - 1);
  const LengthRange in = InputLengthRange(options);
  const LengthRange out = OutputLengthRange(options);
  std::uniform_int_distribution<int32_t> input_len(in.min, in.max);
  std::uniform_int_distribution<int32_t> output_len(out.min, out.max);

  std::vector<int32_t> prefix(static_cast<size_t>(options.shared_prefix_len));
  for (int32_t& id : prefix) id = token(rng);
  std::vector<BenchPrompt> prompts(static_cast<size_t>(std::max(count, 0)));
  for (BenchPrompt& prompt : prompts) {
    const int32_t len = input_len(rng);
    prompt.max_tokens = output_len(rng);
    prompt.token_ids.reserve(static_cast<size_t>(std::max(len, options.shared_prefix_len)));
    prompt.token_ids.assign(prefix.begin(), prefix.end());
    while (static_cast<int32_t>(prompt.token_ids.size()) < len) prompt.token_ids.push_back(token(rng));
  }
  return prompts;
}

}  // namespace octet::bench
