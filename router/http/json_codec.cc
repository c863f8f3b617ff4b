#include "router/http/json_codec.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {
namespace {

// protobuf's names for the JSON types it expected, as an API user knows them.
std::string PlainTypeNames(absl::string_view text) {
  std::string out = absl::StrReplaceAll(text, {{"TYPE_INT32", "an integer"},
                                               {"TYPE_INT64", "an integer"},
                                               {"TYPE_UINT32", "a non-negative integer"},
                                               {"TYPE_UINT64", "a non-negative integer"},
                                               {"TYPE_FLOAT", "a number"},
                                               {"TYPE_DOUBLE", "a number"},
                                               {"TYPE_BOOL", "a boolean"},
                                               {"TYPE_STRING", "a string"}});
  // Message types print as type.googleapis.com/octet.openai.v1.ChatMessage: a JSON object.
  const size_t at = out.find("type.googleapis.com/");
  if (at != std::string::npos) {
    size_t end = at;
    while (end < out.size() && out[end] != ' ' && out[end] != ',') ++end;
    out.replace(at, end - at, "an object");
  }
  return out;
}

// protobuf reports "(path): invalid value X for type T" for a JSON value of the wrong type, and a parser message
// followed by the input and a caret line for text that is not JSON.
absl::Status RewriteParseError(absl::string_view message, const google::protobuf::Descriptor& descriptor) {
  if (absl::ConsumePrefix(&message, "(")) {
    const size_t close = message.find("): ");
    if (close != absl::string_view::npos) {
      std::string path(message.substr(0, close));
      absl::string_view rest = message.substr(close + 3);
      if (absl::ConsumePrefix(&rest, "invalid value ")) {
        const size_t for_type = rest.rfind(" for type ");
        if (for_type != absl::string_view::npos) {
          // A list field given one value is reported with the type of its elements.
          const google::protobuf::FieldDescriptor* field = descriptor.FindFieldByName(path);
          const std::string expected =
              field != nullptr && field->is_repeated() ? "a list" : PlainTypeNames(rest.substr(for_type + 10));
          return InvalidField(path,
                              absl::StrCat("`", path, "` must be ", expected, ", got ", rest.substr(0, for_type)));
        }
      }
      return InvalidField(path, absl::StrCat("`", path, "`: ", PlainTypeNames(rest)));
    }
  }
  if (absl::StrContains(message, "Root element must be a message")) {
    return absl::InvalidArgumentError("request body must be a JSON object");
  }
  absl::string_view first_line = message.substr(0, message.find('\n'));
  absl::ConsumeSuffix(&first_line, ".");
  return absl::InvalidArgumentError(absl::StrCat("request body is not valid JSON: ", first_line));
}

}  // namespace

absl::Status ParseJson(absl::string_view body, google::protobuf::Message* message) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  if (trimmed.empty()) return absl::InvalidArgumentError("request body is empty; expected a JSON object");
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(trimmed.data(), trimmed.size()), message, options);
  if (status.ok()) return absl::OkStatus();
  message->Clear();
  return RewriteParseError(std::string(status.message()), *message->GetDescriptor());
}

std::string PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  // Printing fails only for an Any without its type or a non-finite float in a Value, which nothing here builds.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace octet::router::http
