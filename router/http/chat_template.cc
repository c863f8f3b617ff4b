#include "router/http/chat_template.h"

#include "absl/strings/str_cat.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {
namespace {

using google::protobuf::Value;

absl::StatusOr<absl::string_view> TemplateRole(absl::string_view role, const std::string& field) {
  if (role == "system" || role == "developer") return absl::string_view("system");
  if (role == "user" || role == "assistant") return role;
  if (role.empty()) return InvalidField(field, absl::StrCat("`", field, "` is required"));
  return InvalidField(
      field, absl::StrCat("`", field, "` \"", role, "\" is not supported: use \"system\", \"user\" or \"assistant\""));
}

bool IsEmptyOrNull(const Value& value) {
  switch (value.kind_case()) {
    case Value::KIND_NOT_SET:
    case Value::kNullValue:
      return true;
    case Value::kListValue:
      return value.list_value().values().empty();
    default:
      return false;
  }
}

// A text part {"type": "text", "text": "..."}.
absl::StatusOr<std::string> PartText(const Value& part, const std::string& field) {
  if (part.kind_case() != Value::kStructValue) {
    return InvalidField(field, absl::StrCat("`", field, "` must be an object {\"type\": \"text\", \"text\": ...}"));
  }
  const auto& fields = part.struct_value().fields();
  auto type = fields.find("type");
  if (type == fields.end() || type->second.kind_case() != Value::kStringValue) {
    return InvalidField(field, absl::StrCat("`", field, ".type` is required"));
  }
  if (type->second.string_value() != "text") {
    return InvalidField(field, absl::StrCat("`", field, ".type` \"", type->second.string_value(),
                                            "\" is not supported: only \"text\" parts"));
  }
  auto text = fields.find("text");
  if (text == fields.end() || text->second.kind_case() != Value::kStringValue) {
    return InvalidField(field, absl::StrCat("`", field, ".text` must be a string"));
  }
  return text->second.string_value();
}

absl::StatusOr<std::string> ContentText(const Value& content, absl::string_view role, const std::string& field) {
  switch (content.kind_case()) {
    case Value::kStringValue:
      return content.string_value();
    case Value::KIND_NOT_SET:
    case Value::kNullValue:
      if (role == "assistant") return std::string();
      return InvalidField(field, absl::StrCat("`", field, "` is required"));
    case Value::kListValue: {
      std::string text;
      const auto& parts = content.list_value().values();
      for (int i = 0; i < parts.size(); ++i) {
        absl::StatusOr<std::string> part = PartText(parts[i], absl::StrCat(field, "[", i, "]"));
        if (!part.ok()) return part.status();
        if (i > 0) text += "\n";
        text += *part;
      }
      return text;
    }
    default:
      return InvalidField(field, absl::StrCat("`", field, "` must be a string or a list of text parts"));
  }
}

}  // namespace

absl::StatusOr<std::string> RenderChatPrompt(
    const google::protobuf::RepeatedPtrField<openai::v1::ChatMessage>& messages) {
  if (messages.empty()) return InvalidField("messages", "`messages` must hold at least one message");
  std::string prompt;
  for (int i = 0; i < messages.size(); ++i) {
    const openai::v1::ChatMessage& message = messages[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    absl::StatusOr<absl::string_view> role = TemplateRole(message.role(), field + ".role");
    if (!role.ok()) return role.status();
    if (!IsEmptyOrNull(message.tool_calls())) {
      return InvalidField(field + ".tool_calls", absl::StrCat("`", field, ".tool_calls` is not supported"));
    }
    absl::StatusOr<std::string> content = ContentText(message.content(), message.role(), field + ".content");
    if (!content.ok()) return content.status();
    absl::StrAppend(&prompt, "<|im_start|>", *role, "\n", *content, kChatTurnEnd, "\n");
  }
  absl::StrAppend(&prompt, "<|im_start|>assistant\n");
  return prompt;
}

}  // namespace octet::router::http
