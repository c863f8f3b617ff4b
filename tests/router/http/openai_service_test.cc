// OpenAiService end to end without a socket: a fake Generation + Health service on an in-process gRPC server, and a
// responder that records what would be sent.
#include "router/http/openai_service.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace octet::router::http {
namespace {

using google::protobuf::Struct;

class FakeGeneration final : public v1::Generation::Service {
 public:
  // What Generate sends: these messages, then (when `block_after_messages`) waits until cancelled, then `status`.
  std::vector<v1::GenerateResponse> messages;
  grpc::Status status = grpc::Status::OK;
  bool block_after_messages = false;
  std::vector<int32_t> turn_end_ids = {8191};  // Tokenize("<|im_end|>")
  grpc::Status model_info_status = grpc::Status::OK;

  absl::Notification cancelled;  // a blocked Generate saw its call cancelled
  absl::Notification blocked;    // Generate sent its messages and blocks

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(*request);
    }
    for (const v1::GenerateResponse& message : messages) writer->Write(message);
    if (block_after_messages) {
      blocked.Notify();
      const absl::Time deadline = absl::Now() + absl::Seconds(10);
      while (!context->IsCancelled() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
      if (context->IsCancelled()) cancelled.Notify();
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    return status;
  }

  grpc::Status Tokenize(grpc::ServerContext*, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override {
    if (request->text() == "<|im_end|>") {
      for (int32_t id : turn_end_ids) response->add_token_ids(id);
    }
    return grpc::Status::OK;
  }

  grpc::Status GetModelInfo(grpc::ServerContext*, const v1::GetModelInfoRequest*, v1::ModelInfo* info) override {
    if (!model_info_status.ok()) return model_info_status;
    info->set_model_name("fake-model");
    info->set_context_length(512);
    return grpc::Status::OK;
  }

  std::vector<v1::GenerateRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::GenerateRequest> requests_ ABSL_GUARDED_BY(mu_);
};

class FakeHealth final : public grpc::health::v1::Health::Service {
 public:
  std::atomic<bool> serving = true;
  grpc::Status Check(grpc::ServerContext*, const grpc::health::v1::HealthCheckRequest*,
                     grpc::health::v1::HealthCheckResponse* response) override {
    response->set_status(serving ? grpc::health::v1::HealthCheckResponse::SERVING
                                 : grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    return grpc::Status::OK;
  }
};

class RecordingResponder final : public HttpResponder {
 public:
  int status = 0;
  std::string content_type;
  std::string body;  // of Send
  HttpHeaders headers;
  bool streamed = false;
  bool ended = false;
  std::vector<std::string> writes;
  int fail_writes_after = -1;  // >= 0: Write fails once this many succeeded (the client is gone)

  void Send(int s, absl::string_view type, absl::string_view b, const HttpHeaders& h) override {
    status = s;
    content_type = std::string(type);
    body = std::string(b);
    headers = h;
  }
  bool StartStream(int s, absl::string_view type, const HttpHeaders&) override {
    status = s;
    content_type = std::string(type);
    streamed = true;
    return true;
  }
  bool Write(absl::string_view data) override {
    if (fail_writes_after >= 0 && static_cast<int>(writes.size()) >= fail_writes_after) return false;
    writes.push_back(std::string(data));
    return true;
  }
  void EndStream() override { ended = true; }
};

v1::GenerateResponse Text(const std::string& text) {
  v1::GenerateResponse message;
  message.set_text(text);
  message.add_token_ids(1);
  return message;
}

v1::GenerateResponse Last(v1::FinishReason finish, int prompt_tokens, int completion_tokens) {
  v1::GenerateResponse message;
  message.set_finish_reason(finish);
  message.mutable_usage()->set_prompt_tokens(prompt_tokens);
  message.mutable_usage()->set_completion_tokens(completion_tokens);
  return message;
}

Struct Json(const std::string& json) {
  Struct object;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &object).ok()) << json;
  return object;
}

// The JSON of each "data: {...}\n\n" event (the [DONE] event as "[DONE]").
std::vector<std::string> Events(const RecordingResponder& responder) {
  std::vector<std::string> events;
  for (const std::string& w : responder.writes) {
    EXPECT_EQ(w.rfind("data: ", 0), 0u) << w;
    EXPECT_EQ(w.substr(w.size() - 2), "\n\n") << w;
    events.push_back(w.substr(6, w.size() - 8));
  }
  return events;
}

class OpenAiServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&generation_);
    builder.RegisterService(&health_);
    server_ = builder.BuildAndStart();
    service_ = std::make_unique<OpenAiService>(server_->InProcessChannel(grpc::ChannelArguments()), 1000);
  }
  void TearDown() override {
    service_.reset();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  RecordingResponder Call(const std::string& method, const std::string& path, const std::string& body = "",
                          bool too_large = false) {
    RecordingResponder responder;
    service_->Handle(HttpRequest{method, path, body, too_large}, responder);
    return responder;
  }

  FakeGeneration generation_;
  FakeHealth health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<OpenAiService> service_;
};

TEST_F(OpenAiServiceTest, WholeCompletion) {
  generation_.messages = {Text("Hello"), Text(", world"), Last(v1::FINISH_REASON_LENGTH, 3, 2)};
  RecordingResponder r = Call("POST", "/v1/completions", R"({"model": "fake-model", "prompt": "Say hi"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_FALSE(r.streamed);
  Struct body = Json(r.body);
  EXPECT_EQ(body.fields().at("id").string_value().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(body.fields().at("model").string_value(), "fake-model");
  const Struct& choice = body.fields().at("choices").list_value().values(0).struct_value();
  EXPECT_EQ(choice.fields().at("text").string_value(), "Hello, world");
  EXPECT_EQ(choice.fields().at("finish_reason").string_value(), "length");
  EXPECT_EQ(body.fields().at("usage").struct_value().fields().at("total_tokens").number_value(), 5);

  ASSERT_EQ(generation_.requests().size(), 1u);
  const v1::GenerateRequest forwarded = generation_.requests()[0];
  EXPECT_EQ(forwarded.prompt(), "Say hi");
  EXPECT_EQ(forwarded.sampling().max_tokens(), 16);
  EXPECT_EQ(forwarded.request_id(), body.fields().at("id").string_value());
}

TEST_F(OpenAiServiceTest, StreamedCompletionWithUsage) {
  generation_.messages = {Text("a"), Text("b"), Last(v1::FINISH_REASON_STOP, 2, 2)};
  RecordingResponder r =
      Call("POST", "/v1/completions", R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": true}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/event-stream");
  EXPECT_TRUE(r.streamed);
  EXPECT_TRUE(r.ended);
  std::vector<std::string> events = Events(r);
  ASSERT_EQ(events.size(), 5u);
  auto choice = [&](int i) { return Json(events[i]).fields().at("choices").list_value().values(0).struct_value(); };
  EXPECT_EQ(choice(0).fields().at("text").string_value(), "a");
  EXPECT_EQ(choice(1).fields().at("text").string_value(), "b");
  EXPECT_EQ(choice(1).fields().at("finish_reason").kind_case(), google::protobuf::Value::kNullValue);
  EXPECT_EQ(choice(2).fields().at("finish_reason").string_value(), "stop");
  Struct usage = Json(events[3]);
  EXPECT_EQ(usage.fields().at("choices").list_value().values_size(), 0);
  EXPECT_EQ(usage.fields().at("usage").struct_value().fields().at("completion_tokens").number_value(), 2);
  EXPECT_EQ(events[4], "[DONE]");
  // Every event of one response carries the same id.
  EXPECT_EQ(Json(events[0]).fields().at("id").string_value(), Json(events[3]).fields().at("id").string_value());
}

TEST_F(OpenAiServiceTest, StreamedChatStartsWithTheRole) {
  generation_.messages = {Text("Hi"), Last(v1::FINISH_REASON_STOP, 9, 2)};
  RecordingResponder r =
      Call("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Hello"}], "stream": true})");
  std::vector<std::string> events = Events(r);
  ASSERT_EQ(events.size(), 4u);
  auto delta = [&](int i) {
    return Json(events[i]).fields().at("choices").list_value().values(0).struct_value().fields().at("delta");
  };
  EXPECT_EQ(delta(0).struct_value().fields().at("role").string_value(), "assistant");
  EXPECT_EQ(delta(1).struct_value().fields().at("content").string_value(), "Hi");
  EXPECT_TRUE(delta(2).struct_value().fields().empty());
  EXPECT_EQ(Json(events[2]).fields().at("object").string_value(), "chat.completion.chunk");
  EXPECT_EQ(events[3], "[DONE]");
}

TEST_F(OpenAiServiceTest, ChatStopsOnTheTurnEndTokenTheWorkerReports) {
  generation_.messages = {Last(v1::FINISH_REASON_STOP, 9, 1)};
  RecordingResponder r = Call("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Q"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Struct message =
      Json(r.body).fields().at("choices").list_value().values(0).struct_value().fields().at("message").struct_value();
  EXPECT_EQ(message.fields().at("role").string_value(), "assistant");
  EXPECT_EQ(message.fields().at("content").string_value(), "");
  ASSERT_EQ(generation_.requests().size(), 1u);
  const v1::GenerateRequest forwarded = generation_.requests()[0];
  EXPECT_EQ(forwarded.prompt(), "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n");
  ASSERT_EQ(forwarded.sampling().stop_token_ids_size(), 1);
  EXPECT_EQ(forwarded.sampling().stop_token_ids(0), 8191);
  ASSERT_EQ(forwarded.sampling().stop_size(), 1);
  EXPECT_EQ(forwarded.sampling().stop(0), "<|im_end|>");
}

TEST_F(OpenAiServiceTest, ChatWithoutASingleTurnEndTokenStopsOnTheString) {
  generation_.turn_end_ids = {27, 91, 318};  // a tokenizer without the special token splits it
  generation_.messages = {Last(v1::FINISH_REASON_STOP, 9, 1)};
  Call("POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "Q"}]})");
  ASSERT_EQ(generation_.requests().size(), 1u);
  EXPECT_EQ(generation_.requests()[0].sampling().stop_token_ids_size(), 0);
  EXPECT_EQ(generation_.requests()[0].sampling().stop(0), "<|im_end|>");
}

TEST_F(OpenAiServiceTest, ErrorBeforeTheFirstMessageIsAnHttpStatus) {
  generation_.status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "`max_tokens` = 900 exceeds the context");
  RecordingResponder r = Call("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 900, "stream": true})");
  EXPECT_EQ(r.status, 400);
  EXPECT_FALSE(r.streamed);
  EXPECT_EQ(Json(r.body).fields().at("error").struct_value().fields().at("param").string_value(), "max_tokens");

  generation_.status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "x"})").status, 429);
  generation_.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "no healthy worker (1 configured, 0 healthy)");
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "x"})").status, 503);
  generation_.status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late");
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "x"})").status, 504);
  generation_.status = grpc::Status(grpc::StatusCode::INTERNAL, "broken");
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "x"})").status, 500);
}

TEST_F(OpenAiServiceTest, ErrorAfterTheFirstMessageIsAnErrorEvent) {
  generation_.messages = {Text("partial")};
  generation_.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "worker went away");
  RecordingResponder r = Call("POST", "/v1/completions", R"({"prompt": "x", "stream": true})");
  EXPECT_EQ(r.status, 200);
  std::vector<std::string> events = Events(r);
  ASSERT_EQ(events.size(), 3u);
  const Struct error = Json(events[1]).fields().at("error").struct_value();
  EXPECT_EQ(error.fields().at("message").string_value(), "worker went away");
  EXPECT_EQ(error.fields().at("type").string_value(), "service_unavailable_error");
  EXPECT_EQ(events[2], "[DONE]");
  EXPECT_TRUE(r.ended);
}

TEST_F(OpenAiServiceTest, ClientGoneCancelsTheCall) {
  generation_.messages = {Text("a"), Text("b"), Text("c")};
  generation_.block_after_messages = true;
  RecordingResponder responder;
  responder.fail_writes_after = 1;
  service_->Handle(HttpRequest{"POST", "/v1/completions", R"({"prompt": "x", "stream": true})", false}, responder);
  EXPECT_TRUE(generation_.cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(responder.writes.size(), 1u);
  EXPECT_FALSE(responder.ended);
}

TEST_F(OpenAiServiceTest, DrainRefusesNewRequestsAndCancelAllEndsRunningOnes) {
  generation_.messages = {Text("a")};
  generation_.block_after_messages = true;
  RecordingResponder running;
  std::thread request([&] {
    service_->Handle(HttpRequest{"POST", "/v1/completions", R"({"prompt": "x", "stream": true})", false}, running);
  });
  ASSERT_TRUE(generation_.blocked.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ActiveCalls& calls = service_->active_calls();
  calls.StartDraining();
  RecordingResponder refused = Call("GET", "/v1/models");
  EXPECT_EQ(refused.status, 503);
  EXPECT_FALSE(calls.WaitIdle(absl::Now() + absl::Milliseconds(50)));
  calls.CancelAll();
  EXPECT_TRUE(calls.WaitIdle(absl::Now() + absl::Seconds(5)));
  request.join();
  EXPECT_TRUE(generation_.cancelled.WaitForNotificationWithTimeout(absl::Seconds(5)));
  std::vector<std::string> events = Events(running);
  ASSERT_GE(events.size(), 3u);
  EXPECT_TRUE(Json(events[events.size() - 2]).fields().contains("error"));
  EXPECT_EQ(events.back(), "[DONE]");
}

TEST_F(OpenAiServiceTest, UnknownModelIsNotForwarded) {
  RecordingResponder r =
      Call("POST", "/v1/chat/completions", R"({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Json(r.body).fields().at("error").struct_value().fields().at("code").string_value(), "model_not_found");
  EXPECT_TRUE(generation_.requests().empty());
}

TEST_F(OpenAiServiceTest, InvalidRequestsAreNotForwarded) {
  EXPECT_EQ(Call("POST", "/v1/completions", "{oops").status, 400);
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "x", "n": 2})").status, 400);
  EXPECT_TRUE(generation_.requests().empty());
}

TEST_F(OpenAiServiceTest, Routes) {
  RecordingResponder unknown = Call("GET", "/v2/things");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Json(unknown.body).fields().at("error").struct_value().fields().at("message").string_value(),
            "Unknown path: GET /v2/things");

  RecordingResponder wrong_method = Call("GET", "/v1/chat/completions");
  EXPECT_EQ(wrong_method.status, 405);
  ASSERT_EQ(wrong_method.headers.size(), 1u);
  EXPECT_EQ(wrong_method.headers[0], (std::pair<std::string, std::string>("Allow", "POST")));
  EXPECT_EQ(Call("POST", "/v1/models").status, 405);

  RecordingResponder too_large = Call("POST", "/v1/completions", "", /*too_large=*/true);
  EXPECT_EQ(too_large.status, 413);
  EXPECT_NE(too_large.body.find("1000 bytes"), std::string::npos) << too_large.body;

  RecordingResponder models = Call("GET", "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(
      Json(models.body).fields().at("data").list_value().values(0).struct_value().fields().at("id").string_value(),
      "fake-model");
  EXPECT_EQ(Call("GET", "/v1/models/fake-model").status, 200);
  EXPECT_EQ(Call("GET", "/v1/models/other").status, 404);
}

TEST_F(OpenAiServiceTest, HealthFollowsTheRouter) {
  EXPECT_EQ(Call("GET", "/health").status, 200);
  health_.serving = false;
  EXPECT_EQ(Call("GET", "/health").status, 503);
}

TEST_F(OpenAiServiceTest, NoModelInfoIsUnavailable) {
  generation_.model_info_status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "no healthy worker");
  EXPECT_EQ(Call("GET", "/v1/models").status, 503);
  EXPECT_EQ(Call("POST", "/v1/completions", R"({"prompt": "x"})").status, 503);
}

}  // namespace
}  // namespace octet::router::http
