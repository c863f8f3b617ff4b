// OpenAI response bodies: whole completions and chat completions, their server-sent-event chunks, the model list.
// Every function returns one line of JSON (SseEvent wraps one for a stream).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "octet/v1/generation.pb.h"

namespace octet::router::http {

enum class Endpoint { kCompletions, kChatCompletions };

// What every body or chunk of one response repeats.
struct ResponseHead {
  std::string id;        // "cmpl-..." or "chatcmpl-..."
  uint32_t created = 0;  // unix seconds
  std::string model;     // the served model's name
};

// "stop" for FINISH_REASON_STOP, "length" for FINISH_REASON_LENGTH, "" (null) for anything else.
absl::string_view FinishReasonName(v1::FinishReason reason);

// The whole response of a non-streaming call ("text_completion" or "chat.completion") with its usage.
std::string RenderWhole(Endpoint endpoint, const ResponseHead& head, absl::string_view text, v1::FinishReason finish,
                        const v1::Usage& usage);

// A chat stream's first chunk: delta {"role": "assistant", "content": ""}. (Completion streams have none.)
std::string RenderChatRoleChunk(const ResponseHead& head);

// A stream chunk with new text; finish_reason is null unless `finish` is STOP or LENGTH. A chat chunk with no text
// has an empty delta.
std::string RenderChunk(Endpoint endpoint, const ResponseHead& head, absl::string_view text, v1::FinishReason finish);

// The chunk stream_options.include_usage adds before [DONE]: no choices, the usage.
std::string RenderUsageChunk(Endpoint endpoint, const ResponseHead& head, const v1::Usage& usage);

// GET /v1/models (a list of the served model) and GET /v1/models/{id}.
std::string RenderModelList(const v1::ModelInfo& info, uint32_t created);
std::string RenderModel(const v1::ModelInfo& info, uint32_t created);

// One server-sent event: "data: {json}\n\n".
std::string SseEvent(absl::string_view json);
inline constexpr absl::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace octet::router::http
