// Request validation at the worker's edge: every rule a request can break, with an error that names the field and
// the rule ("`top_p` must be in (0, 1], got 1.5"). Nothing invalid reaches the engine.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "octet/v1/generation.pb.h"
#include "worker/engine/sampling_params.h"

namespace octet {

struct RequestLimits {
  int32_t vocab_size = 0;
  int32_t max_model_len = 0;  // prompt + completion tokens a sequence may have
  int32_t max_logprobs = 20;
  size_t max_stop_strings = 16;
  size_t max_stop_string_bytes = 256;
};

// Checks the token ids of a prompt (given or tokenized): non-empty, each in [0, vocab), fits the context with at
// least one token to generate.
absl::Status ValidatePrompt(std::span<const int32_t> prompt_token_ids, bool from_text, const RequestLimits& limits);

// Checks sampling parameters and fills defaults. prompt_len must already be valid.
absl::StatusOr<SamplingParams> ValidateSampling(const v1::SamplingParams& sampling, int32_t prompt_len,
                                                const RequestLimits& limits);

}  // namespace octet
