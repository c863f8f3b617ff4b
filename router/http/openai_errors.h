// OpenAI-shaped errors: absl::Status values that may carry the HTTP status, the request field at fault and a short
// code, and their one rendering as {"error": {"message", "type", "param", "code"}} with its HTTP status.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace octet::router::http {

// An error whose HTTP status is not the one its absl code maps to (404 unknown path, 405, 413). `error_code`
// becomes the body's "code" and `param` its "param"; either may be empty (null).
absl::Status ApiError(absl::StatusCode code, int http_status, absl::string_view error_code, absl::string_view message,
                      absl::string_view param = {});

// 400: the request field `param` breaks a rule; `message` names the field and the rule.
absl::Status InvalidField(absl::string_view param, absl::string_view message);

// 404 "model_not_found": `requested` is not the model this router serves.
absl::Status ModelNotFound(absl::string_view requested, absl::string_view served);

// 401 "invalid_api_key": the request carries no `Authorization: Bearer` key, or not an accepted one.
absl::Status InvalidApiKey();

// A gRPC status (from the router's Generation service) as an absl::Status with the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

struct RenderedError {
  int http_status = 500;
  std::string body;  // the JSON error object
};

// The HTTP status of an error: an explicit one (ApiError), else INVALID_ARGUMENT 400, NOT_FOUND 404,
// RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, anything else 500.
int HttpStatusOf(const absl::Status& status);

// The error's body. "param" is the field given to InvalidField/ApiError or, for a worker's INVALID_ARGUMENT, the
// first `backticked` field name of its message (without an index: `stop[2]` gives "stop").
RenderedError RenderError(const absl::Status& status);

}  // namespace octet::router::http
