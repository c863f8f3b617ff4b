#include "router/http/openai_errors.h"

#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "octet/openai/v1/openai.pb.h"
#include "router/http/json_codec.h"

namespace octet::router::http {
namespace {

// Payload keys under which an absl::Status carries what the error body needs.
constexpr absl::string_view kHttpStatusKey = "octet.openai/http_status";
constexpr absl::string_view kParamKey = "octet.openai/param";
constexpr absl::string_view kCodeKey = "octet.openai/code";

std::optional<std::string> Payload(const absl::Status& status, absl::string_view key) {
  absl::optional<absl::Cord> value = status.GetPayload(key);
  if (!value) return std::nullopt;
  return std::string(*value);
}

bool IsFieldChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

// "`max_tokens` = 9 ..." gives "max_tokens"; "`stop[1]` must ..." gives "stop"; no backticked name gives "".
std::string FirstFieldName(absl::string_view message) {
  const size_t open = message.find('`');
  if (open == absl::string_view::npos) return "";
  const size_t close = message.find('`', open + 1);
  if (close == absl::string_view::npos) return "";
  absl::string_view name = message.substr(open + 1, close - open - 1);
  name = name.substr(0, name.find('['));
  if (name.empty()) return "";
  for (char c : name) {
    if (!IsFieldChar(c)) return "";
  }
  return std::string(name);
}

absl::string_view ErrorType(int http_status) {
  switch (http_status) {
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable_error";
    case 504:
      return "timeout_error";
    default:
      return http_status >= 400 && http_status < 500 ? "invalid_request_error" : "server_error";
  }
}

void SetStringOrNull(google::protobuf::Value* value, const std::string& s) {
  if (s.empty()) {
    value->set_null_value(google::protobuf::NULL_VALUE);
  } else {
    value->set_string_value(s);
  }
}

}  // namespace

absl::Status ApiError(absl::StatusCode code, int http_status, absl::string_view error_code, absl::string_view message,
                      absl::string_view param) {
  absl::Status status(code, message);
  status.SetPayload(kHttpStatusKey, absl::Cord(absl::StrCat(http_status)));
  if (!error_code.empty()) status.SetPayload(kCodeKey, absl::Cord(error_code));
  if (!param.empty()) status.SetPayload(kParamKey, absl::Cord(param));
  return status;
}

absl::Status InvalidField(absl::string_view param, absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kParamKey, absl::Cord(param));
  return status;
}

absl::Status ModelNotFound(absl::string_view requested, absl::string_view served) {
  return ApiError(absl::StatusCode::kNotFound, 404, "model_not_found",
                  absl::StrCat("The model `", requested, "` does not exist; this server serves `", served, "`"),
                  "model");
}

absl::Status InvalidApiKey() {
  return ApiError(absl::StatusCode::kUnauthenticated, 401, "invalid_api_key", "missing or invalid API key");
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

int HttpStatusOf(const absl::Status& status) {
  int explicit_status = 0;
  if (std::optional<std::string> value = Payload(status, kHttpStatusKey);
      value && absl::SimpleAtoi(*value, &explicit_status)) {
    return explicit_status;
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

RenderedError RenderError(const absl::Status& status) {
  RenderedError rendered;
  rendered.http_status = HttpStatusOf(status);
  openai::v1::ErrorResponse response;
  openai::v1::Error* error = response.mutable_error();
  error->set_message(status.message().empty() ? std::string(absl::StatusCodeToString(status.code()))
                                              : std::string(status.message()));
  error->set_type(std::string(ErrorType(rendered.http_status)));
  std::string param = Payload(status, kParamKey).value_or("");
  if (param.empty() && status.code() == absl::StatusCode::kInvalidArgument) param = FirstFieldName(status.message());
  SetStringOrNull(error->mutable_param(), param);
  SetStringOrNull(error->mutable_code(), Payload(status, kCodeKey).value_or(""));
  rendered.body = PrintJson(response);
  return rendered;
}

}  // namespace octet::router::http
