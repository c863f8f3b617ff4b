// OpenAI request bodies → GenerateRequest: parsing, the polymorphic fields, what is refused, the chat template.
#include "router/http/openai_request.h"

#include <gtest/gtest.h>

#include <string>

#include "router/http/chat_template.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {
namespace {

absl::StatusOr<GenerationCall> Completion(const std::string& body) {
  absl::StatusOr<openai::v1::CompletionRequest> parsed = ParseCompletionRequest(body);
  if (!parsed.ok()) return parsed.status();
  return MapCompletionRequest(*parsed, "cmpl-1");
}

absl::StatusOr<GenerationCall> Chat(const std::string& body, std::optional<int32_t> turn_end = std::nullopt) {
  absl::StatusOr<openai::v1::ChatCompletionRequest> parsed = ParseChatCompletionRequest(body);
  if (!parsed.ok()) return parsed.status();
  return MapChatRequest(*parsed, turn_end, "chatcmpl-1");
}

// The rendered error of a failed call: {http status, "param" as JSON, message}.
struct Rejection {
  int http_status;
  std::string body;
  std::string message;
};
Rejection Reject(const absl::StatusOr<GenerationCall>& call) {
  EXPECT_FALSE(call.ok());
  RenderedError error = RenderError(call.status());
  return {error.http_status, error.body, std::string(call.status().message())};
}

TEST(CompletionRequestTest, MapsEverySamplingField) {
  absl::StatusOr<GenerationCall> call = Completion(R"({
      "model": "m", "prompt": "def f():", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
      "seed": 42, "stop": ["\n\n", "END"], "stream": true, "stream_options": {"include_usage": true},
      "n": 1, "user": "u", "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": null,
      "stop_token_ids": [3], "ignore_eos": true, "some_future_field": {"x": [1]}})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->model, "m");
  EXPECT_TRUE(call->stream);
  EXPECT_TRUE(call->include_usage);
  const v1::GenerateRequest& r = call->request;
  EXPECT_EQ(r.request_id(), "cmpl-1");
  EXPECT_EQ(r.prompt(), "def f():");
  const v1::SamplingParams& s = r.sampling();
  EXPECT_EQ(s.max_tokens(), 7);
  EXPECT_FLOAT_EQ(s.temperature(), 0.5f);
  EXPECT_FLOAT_EQ(s.top_p(), 0.9f);
  EXPECT_EQ(s.top_k(), 5);
  EXPECT_EQ(s.seed(), 42u);
  ASSERT_EQ(s.stop_size(), 2);
  EXPECT_EQ(s.stop(0), "\n\n");
  EXPECT_EQ(s.stop(1), "END");
  ASSERT_EQ(s.stop_token_ids_size(), 1);
  EXPECT_EQ(s.stop_token_ids(0), 3);
  EXPECT_TRUE(s.ignore_eos());
}

TEST(CompletionRequestTest, DefaultsFollowOpenAi) {
  absl::StatusOr<GenerationCall> call = Completion(R"({"prompt": "x", "stop": "END", "top_k": -1, "seed": 0})");
  ASSERT_TRUE(call.ok()) << call.status();
  const v1::SamplingParams& s = call->request.sampling();
  EXPECT_EQ(s.max_tokens(), kDefaultCompletionMaxTokens);  // 16, as OpenAI and vLLM
  EXPECT_FALSE(s.has_temperature());                       // the worker's default (1)
  EXPECT_FALSE(s.has_top_p());
  EXPECT_EQ(s.top_k(), 0);  // -1 is "no limit", which octet spells 0
  EXPECT_NE(s.seed(), 0u);  // seed 0 is a fixed seed, not "pick one"
  ASSERT_EQ(s.stop_size(), 1);
  EXPECT_EQ(s.stop(0), "END");
  EXPECT_TRUE(call->model.empty());
  EXPECT_FALSE(call->stream);
  EXPECT_FALSE(call->include_usage);
}

TEST(CompletionRequestTest, PromptShapes) {
  EXPECT_EQ(Completion(R"({"prompt": ["only one"]})")->request.prompt(), "only one");
  absl::StatusOr<GenerationCall> ids = Completion(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->request.prompt_token_ids().ids_size(), 3);
  EXPECT_EQ(ids->request.prompt_token_ids().ids(2), 3);
  absl::StatusOr<GenerationCall> nested = Completion(R"({"prompt": [[5, 6]]})");
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(nested->request.prompt_token_ids().ids(1), 6);

  for (const char* body : {R"({"prompt": ["a", "b"]})", R"({"prompt": [[1], [2]]})", R"({"prompt": []})",
                           R"({"prompt": [1.5]})", R"({"prompt": [1, "a"]})", R"({"prompt": 7})", R"({})",
                           R"({"prompt": null})", R"({"prompt": {"text": "x"}})"}) {
    Rejection r = Reject(Completion(body));
    EXPECT_EQ(r.http_status, 400) << body;
    EXPECT_NE(r.body.find(R"("param":"prompt")"), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_NE(Reject(Completion(R"({"prompt": ["a", "b"]})")).message.find("one prompt per request"), std::string::npos);
}

TEST(CompletionRequestTest, StopMustBeStrings) {
  Rejection r = Reject(Completion(R"({"prompt": "x", "stop": [1]})"));
  EXPECT_EQ(r.http_status, 400);
  EXPECT_EQ(r.message, "`stop` must be a string or a list of strings");
  EXPECT_TRUE(Completion(R"({"prompt": "x", "stop": null})").ok());
  EXPECT_TRUE(Completion(R"({"prompt": "x", "stop": []})").ok());
}

TEST(CompletionRequestTest, UnsupportedFieldsAreNamed) {
  struct Case {
    const char* body;
    const char* param;
  };
  for (const Case& c :
       {Case{R"({"prompt": "x", "n": 2})", "n"}, Case{R"({"prompt": "x", "best_of": 3})", "best_of"},
        Case{R"({"prompt": "x", "echo": true})", "echo"}, Case{R"({"prompt": "x", "suffix": "s"})", "suffix"},
        Case{R"({"prompt": "x", "logprobs": 1})", "logprobs"},
        Case{R"({"prompt": "x", "presence_penalty": 0.5})", "presence_penalty"},
        Case{R"({"prompt": "x", "frequency_penalty": -1})", "frequency_penalty"},
        Case{R"({"prompt": "x", "repetition_penalty": 1.2})", "repetition_penalty"},
        Case{R"({"prompt": "x", "logit_bias": {"5": 1}})", "logit_bias"},
        Case{R"({"prompt": "x", "min_tokens": 4})", "min_tokens"},
        Case{R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"}}) {
    Rejection r = Reject(Completion(c.body));
    EXPECT_EQ(r.http_status, 400) << c.body;
    EXPECT_NE(r.body.find(std::string(R"("param":")") + c.param + "\""), std::string::npos) << r.body;
    EXPECT_NE(r.message.find(std::string("`") + c.param + "`"), std::string::npos) << r.message;
  }
  Rejection n = Reject(Completion(R"({"prompt": "x", "n": 2})"));
  EXPECT_EQ(n.message, "`n` is not supported: this server returns one choice per request (n must be 1), got 2");
  // Neutral values of the unsupported fields are fine.
  EXPECT_TRUE(Completion(R"({"prompt": "x", "n": 1, "best_of": 1, "echo": false, "presence_penalty": 0,
                             "repetition_penalty": 1, "logit_bias": {}, "min_tokens": 0, "suffix": ""})")
                  .ok());
}

TEST(CompletionRequestTest, BadJsonIsA400NamingTheProblem) {
  EXPECT_EQ(Reject(Completion("")).message, "request body is empty; expected a JSON object");
  EXPECT_EQ(Reject(Completion("{\"prompt\": ")).http_status, 400);
  EXPECT_EQ(Reject(Completion("not json")).message, "request body is not valid JSON: Unexpected token");
  EXPECT_EQ(Reject(Completion("[1, 2]")).message, "request body must be a JSON object");
  EXPECT_EQ(Reject(Completion(R"("text")")).message, "request body must be a JSON object");
  Rejection type = Reject(Completion(R"({"prompt": "x", "max_tokens": "ten"})"));
  EXPECT_EQ(type.message, "`max_tokens` must be an integer, got \"ten\"");
  EXPECT_NE(type.body.find(R"("param":"max_tokens")"), std::string::npos);
  EXPECT_EQ(Reject(Completion(R"({"prompt": "x", "temperature": "hot"})")).message,
            "`temperature` must be a number, got \"hot\"");
  EXPECT_EQ(Reject(Completion(R"({"prompt": "x", "stream": 1})")).message, "`stream` must be a boolean, got 1");
  EXPECT_EQ(Reject(Completion(R"({"prompt": "x", "model": 5})")).message, "`model` must be a string, got 5");
}

TEST(ChatRequestTest, RendersChatMlAndStopsOnTheTurnEnd) {
  absl::StatusOr<GenerationCall> call = Chat(R"({"model": "m", "messages": [
      {"role": "system", "content": "Be terse."},
      {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
      {"role": "assistant", "content": "Hello."},
      {"role": "user", "content": "Bye"}], "stop": "END"})",
                                             /*turn_end=*/8191);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->request.prompt(),
            "<|im_start|>system\nBe terse.<|im_end|>\n"
            "<|im_start|>user\nHi\nthere<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n");
  const v1::SamplingParams& s = call->request.sampling();
  ASSERT_EQ(s.stop_size(), 2);
  EXPECT_EQ(s.stop(0), "END");
  EXPECT_EQ(s.stop(1), "<|im_end|>");
  ASSERT_EQ(s.stop_token_ids_size(), 1);
  EXPECT_EQ(s.stop_token_ids(0), 8191);
  EXPECT_FALSE(s.has_max_tokens());  // chat: the rest of the context
}

TEST(ChatRequestTest, TurnEndIsAddedOnceAndOnlyAsTextWithoutATokenId) {
  absl::StatusOr<GenerationCall> call = Chat(
      R"({"messages": [{"role": "user", "content": "x"}], "stop": ["<|im_end|>"], "stop_token_ids": [8191]})", 8191);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->request.sampling().stop_size(), 1);
  EXPECT_EQ(call->request.sampling().stop_token_ids_size(), 1);
  absl::StatusOr<GenerationCall> no_id = Chat(R"({"messages": [{"role": "user", "content": "x"}]})");
  ASSERT_TRUE(no_id.ok()) << no_id.status();
  EXPECT_EQ(no_id->request.sampling().stop(0), "<|im_end|>");
  EXPECT_EQ(no_id->request.sampling().stop_token_ids_size(), 0);
}

TEST(ChatRequestTest, MaxCompletionTokensWinsOverMaxTokens) {
  EXPECT_EQ(
      Chat(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5})")->request.sampling().max_tokens(), 5);
  EXPECT_EQ(Chat(R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 5,
                    "max_completion_tokens": 9})")
                ->request.sampling()
                .max_tokens(),
            9);
}

TEST(ChatRequestTest, DeveloperIsSystemAndAssistantContentMayBeNull) {
  absl::StatusOr<GenerationCall> call = Chat(R"({"messages": [{"role": "developer", "content": "d"},
      {"role": "assistant", "content": null}, {"role": "user", "content": "u"}]})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->request.prompt(),
            "<|im_start|>system\nd<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n<|im_start|>user\nu<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatRequestTest, RefusesWhatTheTemplateCannotWrite) {
  struct Case {
    const char* body;
    const char* message;
  };
  for (const Case& c : {
           Case{R"({"messages": []})", "`messages` must hold at least one message"},
           Case{R"({})", "`messages` must hold at least one message"},
           Case{R"({"messages": [{"role": "tool", "content": "x"}]})",
                "`messages[0].role` \"tool\" is not supported: use \"system\", \"user\" or \"assistant\""},
           Case{R"({"messages": [{"content": "x"}]})", "`messages[0].role` is required"},
           Case{R"({"messages": [{"role": "user"}]})", "`messages[0].content` is required"},
           Case{R"({"messages": [{"role": "user", "content": 5}]})",
                "`messages[0].content` must be a string or a list of text parts"},
           Case{R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})",
                "`messages[0].content[0].type` \"image_url\" is not supported: only \"text\" parts"},
           Case{R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
                "`messages[0].content[0].text` must be a string"},
           Case{R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "",
                                  "tool_calls": [{"id": "1"}]}]})",
                "`messages[1].tool_calls` is not supported"},
           Case{R"({"messages": "hi"})", "`messages` must be a list, got \"hi\""},
           Case{R"({"messages": ["hi"]})", "`messages[0]` must be an object, got \"hi\""},
       }) {
    Rejection r = Reject(Chat(c.body));
    EXPECT_EQ(r.http_status, 400) << c.body;
    EXPECT_EQ(r.message, c.message) << c.body;
  }
}

TEST(ChatRequestTest, UnsupportedChatFields) {
  for (const char* field : {R"("logprobs": true)", R"("top_logprobs": 2)", R"("tools": [{"type": "function"}])",
                            R"("tool_choice": "required")", R"("response_format": {"type": "json_object"})",
                            R"("n": 3)", R"("frequency_penalty": 1)"}) {
    const std::string body = std::string(R"({"messages": [{"role": "user", "content": "x"}], )") + field + "}";
    EXPECT_EQ(Reject(Chat(body)).http_status, 400) << body;
  }
  EXPECT_TRUE(Chat(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": false, "tools": [],
                      "tool_choice": "none", "response_format": {"type": "text"}})")
                  .ok());
}

TEST(CheckModelTest, EmptyOrServedNameOnly) {
  EXPECT_TRUE(CheckModel("", "qwen").ok());
  EXPECT_TRUE(CheckModel("qwen", "qwen").ok());
  absl::Status wrong = CheckModel("gpt-4", "qwen");
  RenderedError error = RenderError(wrong);
  EXPECT_EQ(error.http_status, 404);
  EXPECT_NE(error.body.find(R"("code":"model_not_found")"), std::string::npos) << error.body;
  EXPECT_NE(error.body.find(R"("param":"model")"), std::string::npos) << error.body;
  EXPECT_NE(error.body.find("gpt-4"), std::string::npos) << error.body;
}

}  // namespace
}  // namespace octet::router::http
