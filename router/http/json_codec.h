// JSON bodies to and from the protobuf messages of proto/octet/openai/v1/openai.proto (protobuf's JSON mapping,
// OpenAI's snake_case names), with parse errors rewritten for an API user.
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace octet::router::http {

// Fills `message` from a JSON object; fields it does not describe are ignored. INVALID_ARGUMENT naming the problem
// otherwise ("request body is not valid JSON: ...", "`max_tokens`: expected an integer, got \"ten\"").
absl::Status ParseJson(absl::string_view body, google::protobuf::Message* message);

// One line of JSON. Scalars without presence are always printed (so `"choices": []` appears); `optional` fields and
// message fields only when set.
std::string PrintJson(const google::protobuf::Message& message);

}  // namespace octet::router::http
