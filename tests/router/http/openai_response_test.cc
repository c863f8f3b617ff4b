// Response bodies and stream chunks in OpenAI's shape, read back as JSON.
#include "router/http/openai_response.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <string>

namespace octet::router::http {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

Struct ParseObject(const std::string& json) {
  Struct object;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &object).ok()) << json;
  return object;
}

const Value& Field(const Struct& object, const std::string& name) {
  static const Value* const kMissing = new Value();
  auto it = object.fields().find(name);
  EXPECT_NE(it, object.fields().end()) << "no field " << name;
  return it == object.fields().end() ? *kMissing : it->second;
}

const Struct& FirstChoice(const Struct& body) {
  const Value& choices = Field(body, "choices");
  EXPECT_EQ(choices.list_value().values_size(), 1);
  return choices.list_value().values(0).struct_value();
}

const ResponseHead kHead{"cmpl-abc", 1700000000, "qwen3_5-code-small"};

v1::Usage MakeUsage(int prompt, int completion) {
  v1::Usage usage;
  usage.set_prompt_tokens(prompt);
  usage.set_completion_tokens(completion);
  return usage;
}

void ExpectHead(const Struct& body, const std::string& object) {
  EXPECT_EQ(Field(body, "id").string_value(), "cmpl-abc");
  EXPECT_EQ(Field(body, "object").string_value(), object);
  EXPECT_EQ(Field(body, "created").number_value(), 1700000000);  // a JSON number, not a string
  EXPECT_EQ(Field(body, "model").string_value(), "qwen3_5-code-small");
}

void ExpectUsage(const Struct& body, int prompt, int completion) {
  const Struct& usage = Field(body, "usage").struct_value();
  EXPECT_EQ(Field(usage, "prompt_tokens").number_value(), prompt);
  EXPECT_EQ(Field(usage, "completion_tokens").number_value(), completion);
  EXPECT_EQ(Field(usage, "total_tokens").number_value(), prompt + completion);
}

TEST(OpenAiResponseTest, WholeCompletion) {
  Struct body = ParseObject(
      RenderWhole(Endpoint::kCompletions, kHead, "a <b> \"c\"\n", v1::FINISH_REASON_LENGTH, MakeUsage(5, 3)));
  ExpectHead(body, "text_completion");
  const Struct& choice = FirstChoice(body);
  EXPECT_EQ(Field(choice, "index").number_value(), 0);  // printed although 0
  EXPECT_EQ(Field(choice, "text").string_value(), "a <b> \"c\"\n");
  EXPECT_EQ(Field(choice, "finish_reason").string_value(), "length");
  EXPECT_EQ(Field(choice, "logprobs").kind_case(), Value::kNullValue);
  ExpectUsage(body, 5, 3);
}

TEST(OpenAiResponseTest, WholeChatCompletion) {
  Struct body =
      ParseObject(RenderWhole(Endpoint::kChatCompletions, kHead, "", v1::FINISH_REASON_STOP, MakeUsage(11, 0)));
  ExpectHead(body, "chat.completion");
  const Struct& choice = FirstChoice(body);
  const Struct& message = Field(choice, "message").struct_value();
  EXPECT_EQ(Field(message, "role").string_value(), "assistant");
  EXPECT_EQ(Field(message, "content").string_value(), "");  // an empty reply is "", not missing
  EXPECT_EQ(Field(choice, "finish_reason").string_value(), "stop");
  EXPECT_FALSE(choice.fields().contains("delta"));
  ExpectUsage(body, 11, 0);
}

TEST(OpenAiResponseTest, CompletionChunks) {
  Struct middle = ParseObject(RenderChunk(Endpoint::kCompletions, kHead, "tok", v1::FINISH_REASON_UNSPECIFIED));
  ExpectHead(middle, "text_completion");
  EXPECT_EQ(Field(FirstChoice(middle), "text").string_value(), "tok");
  EXPECT_EQ(Field(FirstChoice(middle), "finish_reason").kind_case(), Value::kNullValue);
  EXPECT_FALSE(middle.fields().contains("usage"));
  Struct last = ParseObject(RenderChunk(Endpoint::kCompletions, kHead, "", v1::FINISH_REASON_STOP));
  EXPECT_EQ(Field(FirstChoice(last), "finish_reason").string_value(), "stop");
  EXPECT_EQ(Field(FirstChoice(last), "text").string_value(), "");
}

TEST(OpenAiResponseTest, ChatChunks) {
  Struct role = ParseObject(RenderChatRoleChunk(kHead));
  ExpectHead(role, "chat.completion.chunk");
  const Struct& role_delta = Field(FirstChoice(role), "delta").struct_value();
  EXPECT_EQ(Field(role_delta, "role").string_value(), "assistant");
  EXPECT_EQ(Field(role_delta, "content").string_value(), "");

  Struct text = ParseObject(RenderChunk(Endpoint::kChatCompletions, kHead, "hi", v1::FINISH_REASON_UNSPECIFIED));
  const Struct& text_delta = Field(FirstChoice(text), "delta").struct_value();
  EXPECT_EQ(Field(text_delta, "content").string_value(), "hi");
  EXPECT_FALSE(text_delta.fields().contains("role"));
  EXPECT_EQ(Field(FirstChoice(text), "finish_reason").kind_case(), Value::kNullValue);

  Struct last = ParseObject(RenderChunk(Endpoint::kChatCompletions, kHead, "", v1::FINISH_REASON_LENGTH));
  EXPECT_TRUE(Field(FirstChoice(last), "delta").struct_value().fields().empty());
  EXPECT_EQ(Field(FirstChoice(last), "finish_reason").string_value(), "length");
}

TEST(OpenAiResponseTest, UsageChunkHasEmptyChoices) {
  for (Endpoint endpoint : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    Struct chunk = ParseObject(RenderUsageChunk(endpoint, kHead, MakeUsage(4, 6)));
    EXPECT_EQ(Field(chunk, "choices").kind_case(), Value::kListValue);
    EXPECT_EQ(Field(chunk, "choices").list_value().values_size(), 0);
    ExpectUsage(chunk, 4, 6);
  }
}

TEST(OpenAiResponseTest, FinishReasonNames) {
  EXPECT_EQ(FinishReasonName(v1::FINISH_REASON_STOP), "stop");
  EXPECT_EQ(FinishReasonName(v1::FINISH_REASON_LENGTH), "length");
  EXPECT_EQ(FinishReasonName(v1::FINISH_REASON_UNSPECIFIED), "");
  EXPECT_EQ(FinishReasonName(v1::FINISH_REASON_CANCELLED), "");
}

TEST(OpenAiResponseTest, ModelList) {
  v1::ModelInfo info;
  info.set_model_name("qwen3_5-code-small");
  info.set_context_length(512);
  Struct list = ParseObject(RenderModelList(info, 1700000000));
  EXPECT_EQ(Field(list, "object").string_value(), "list");
  ASSERT_EQ(Field(list, "data").list_value().values_size(), 1);
  const Struct& model = Field(list, "data").list_value().values(0).struct_value();
  EXPECT_EQ(Field(model, "id").string_value(), "qwen3_5-code-small");
  EXPECT_EQ(Field(model, "object").string_value(), "model");
  EXPECT_EQ(Field(model, "created").number_value(), 1700000000);
  EXPECT_EQ(Field(model, "owned_by").string_value(), "octet");
  EXPECT_EQ(Field(model, "max_model_len").number_value(), 512);
  EXPECT_EQ(ParseObject(RenderModel(info, 1)).fields().at("id").string_value(), "qwen3_5-code-small");
}

TEST(OpenAiResponseTest, ServerSentEvents) {
  EXPECT_EQ(SseEvent(R"({"a":1})"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // A JSON line never holds a raw newline, which would end the event early.
  EXPECT_EQ(RenderChunk(Endpoint::kCompletions, kHead, "a\nb\r\n", v1::FINISH_REASON_UNSPECIFIED).find('\n'),
            std::string::npos);
}

}  // namespace
}  // namespace octet::router::http
