// OpenAI request bodies → octet.v1.GenerateRequest: JSON parsing, the checks for what octet does not support
// ("`n` = 2 is not supported ..."), the chat template, and the mapping of the sampling fields. The worker still
// validates ranges and the context length; its INVALID_ARGUMENT reaches the client as a 400.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "octet/openai/v1/openai.pb.h"
#include "octet/v1/generation.pb.h"

namespace octet::router::http {

// The default max_tokens of /v1/completions when the request has none (OpenAI's and vLLM's); chat completions
// default to the rest of the context.
inline constexpr int32_t kDefaultCompletionMaxTokens = 16;

// What one front-end call needs.
struct GenerationCall {
  v1::GenerateRequest request;
  std::string model;  // as requested; empty when omitted
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

absl::StatusOr<openai::v1::CompletionRequest> ParseCompletionRequest(absl::string_view body);
absl::StatusOr<openai::v1::ChatCompletionRequest> ParseChatCompletionRequest(absl::string_view body);

// The GenerateRequest of a completion. `request_id` becomes its request_id.
absl::StatusOr<GenerationCall> MapCompletionRequest(const openai::v1::CompletionRequest& request,
                                                    std::string request_id);

// The GenerateRequest of a chat completion: the ChatML prompt, and stops on the turn end both as a string and,
// when the served tokenizer has it as one (special) token, as `turn_end_token_id` (a special token's text never
// appears in the generated text, so only the token id can stop it).
absl::StatusOr<GenerationCall> MapChatRequest(const openai::v1::ChatCompletionRequest& request,
                                              std::optional<int32_t> turn_end_token_id, std::string request_id);

// OK when `requested` is empty or the served model's name; 404 model_not_found otherwise.
absl::Status CheckModel(absl::string_view requested, absl::string_view served);

}  // namespace octet::router::http
