// OpenAI error bodies and the HTTP status of every error kind.
#include "router/http/openai_errors.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <string>

namespace octet::router::http {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// The "error" object of a rendered error.
Struct ErrorObject(const RenderedError& rendered) {
  Struct body;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(rendered.body, &body).ok()) << rendered.body;
  EXPECT_EQ(body.fields_size(), 1) << rendered.body;
  return body.fields().at("error").struct_value();
}

TEST(OpenAiErrorsTest, HttpStatusOfEachCode) {
  EXPECT_EQ(HttpStatusOf(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusOf(absl::NotFoundError("x")), 404);
  EXPECT_EQ(HttpStatusOf(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusOf(absl::UnavailableError("x")), 503);
  EXPECT_EQ(HttpStatusOf(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusOf(absl::InternalError("x")), 500);
  EXPECT_EQ(HttpStatusOf(absl::CancelledError("x")), 500);
  EXPECT_EQ(HttpStatusOf(absl::UnimplementedError("x")), 500);
  EXPECT_EQ(HttpStatusOf(ApiError(absl::StatusCode::kInvalidArgument, 413, "request_too_large", "big")), 413);
}

TEST(OpenAiErrorsTest, GrpcStatusKeepsCodeAndMessage) {
  absl::Status status = FromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full"));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), "queue full");
  RenderedError rendered = RenderError(status);
  EXPECT_EQ(rendered.http_status, 429);
  Struct error = ErrorObject(rendered);
  EXPECT_EQ(error.fields().at("message").string_value(), "queue full");
  EXPECT_EQ(error.fields().at("type").string_value(), "rate_limit_error");
  EXPECT_EQ(error.fields().at("param").kind_case(), Value::kNullValue);
  EXPECT_EQ(error.fields().at("code").kind_case(), Value::kNullValue);
}

TEST(OpenAiErrorsTest, TypesByStatus) {
  EXPECT_EQ(ErrorObject(RenderError(absl::InvalidArgumentError("x"))).fields().at("type").string_value(),
            "invalid_request_error");
  EXPECT_EQ(ErrorObject(RenderError(absl::UnavailableError("x"))).fields().at("type").string_value(),
            "service_unavailable_error");
  EXPECT_EQ(ErrorObject(RenderError(absl::DeadlineExceededError("x"))).fields().at("type").string_value(),
            "timeout_error");
  EXPECT_EQ(ErrorObject(RenderError(absl::InternalError("x"))).fields().at("type").string_value(), "server_error");
}

TEST(OpenAiErrorsTest, ParamFromTheWorkersMessage) {
  // The worker names the field in backticks first; an index is dropped.
  auto param = [](const char* message) {
    return ErrorObject(RenderError(absl::InvalidArgumentError(message))).fields().at("param");
  };
  EXPECT_EQ(param("`max_tokens` = 900 with a prompt of 3 tokens exceeds the context").string_value(), "max_tokens");
  EXPECT_EQ(param("`stop[2]` must be 1 to 256 bytes long").string_value(), "stop");
  EXPECT_EQ(param("no field named here").kind_case(), Value::kNullValue);
  EXPECT_EQ(param("`weird value!` here").kind_case(), Value::kNullValue);
  // Only for INVALID_ARGUMENT: other errors' backticks are not fields.
  EXPECT_EQ(ErrorObject(RenderError(absl::InternalError("`x` broke"))).fields().at("param").kind_case(),
            Value::kNullValue);
}

TEST(OpenAiErrorsTest, ExplicitParamAndCode) {
  RenderedError rendered = RenderError(InvalidField("messages[0].role", "`messages[0].role` is required"));
  EXPECT_EQ(rendered.http_status, 400);
  EXPECT_EQ(ErrorObject(rendered).fields().at("param").string_value(), "messages[0].role");

  RenderedError not_found = RenderError(ModelNotFound("gpt-4", "qwen"));
  EXPECT_EQ(not_found.http_status, 404);
  Struct error = ErrorObject(not_found);
  EXPECT_EQ(error.fields().at("code").string_value(), "model_not_found");
  EXPECT_EQ(error.fields().at("param").string_value(), "model");
  EXPECT_EQ(error.fields().at("type").string_value(), "invalid_request_error");

  RenderedError too_large =
      RenderError(ApiError(absl::StatusCode::kInvalidArgument, 413, "request_too_large", "too big"));
  EXPECT_EQ(too_large.http_status, 413);
  EXPECT_EQ(ErrorObject(too_large).fields().at("code").string_value(), "request_too_large");
  EXPECT_EQ(ErrorObject(too_large).fields().at("message").string_value(), "too big");
}

}  // namespace
}  // namespace octet::router::http
