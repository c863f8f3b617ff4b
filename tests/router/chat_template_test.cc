// The router's chat template: Qwen's ChatML, as transformers' tokenizer.apply_chat_template writes it for these roles.
#include <gtest/gtest.h>

#include "router/generation_service.h"

namespace octet::router {
namespace {

google::protobuf::RepeatedPtrField<v1::ChatMessage> Messages(
    std::initializer_list<std::pair<const char*, const char*>> turns) {
  google::protobuf::RepeatedPtrField<v1::ChatMessage> messages;
  for (const auto& [role, content] : turns) {
    v1::ChatMessage* m = messages.Add();
    m->set_role(role);
    m->set_content(content);
  }
  return messages;
}

TEST(RenderChatMl, WritesEveryTurnThenOpensTheAssistants) {
  absl::StatusOr<std::string> prompt =
      RenderChatMl(Messages({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "2+2?"}}));
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_EQ(*prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello."
            "<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(RenderChatMl, RefusesAnEmptyConversationAndUnknownRoles) {
  EXPECT_EQ(RenderChatMl(Messages({})).status().message(), "`messages` must not be empty");
  const absl::Status bad = RenderChatMl(Messages({{"user", "a"}, {"tool", "b"}})).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "`messages[1].role` must be system, user or assistant, got 'tool'");
}

}  // namespace
}  // namespace octet::router
