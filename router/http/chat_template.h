// The chat template: Qwen's ChatML, the format of the served Qwen3/Qwen3.5 models.
//   <|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "octet/openai/v1/openai.pb.h"

namespace octet::router::http {

// Ends every turn; the assistant's reply stops on it.
inline constexpr absl::string_view kChatTurnEnd = "<|im_end|>";

// The prompt for `messages`: one `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then the assistant's
// opening `<|im_start|>assistant\n`. Roles: system, developer (written as system), user, assistant. Content: a
// string, a list of {"type": "text", "text": ...} parts (joined with "\n"), or null for an assistant message.
// INVALID_ARGUMENT naming the field (`messages[1].role`) otherwise.
absl::StatusOr<std::string> RenderChatPrompt(
    const google::protobuf::RepeatedPtrField<openai::v1::ChatMessage>& messages);

}  // namespace octet::router::http
