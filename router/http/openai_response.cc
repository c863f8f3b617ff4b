#include "router/http/openai_response.h"

#include "absl/strings/str_cat.h"
#include "octet/openai/v1/openai.pb.h"
#include "router/http/json_codec.h"

namespace octet::router::http {
namespace {

using openai::v1::ChatCompletion;
using openai::v1::Completion;

void SetFinishReason(v1::FinishReason finish, google::protobuf::Value* value) {
  absl::string_view name = FinishReasonName(finish);
  if (name.empty()) {
    value->set_null_value(google::protobuf::NULL_VALUE);
  } else {
    value->set_string_value(std::string(name));
  }
}

void SetUsage(const v1::Usage& usage, openai::v1::Usage* out) {
  out->set_prompt_tokens(usage.prompt_tokens());
  out->set_completion_tokens(usage.completion_tokens());
  out->set_total_tokens(usage.prompt_tokens() + usage.completion_tokens());
}

template <typename Body>
Body Head(const ResponseHead& head, absl::string_view object) {
  Body body;
  body.set_id(head.id);
  body.set_object(std::string(object));
  body.set_created(head.created);
  body.set_model(head.model);
  return body;
}

openai::v1::CompletionChoice* AddCompletionChoice(Completion* body, absl::string_view text, v1::FinishReason finish) {
  openai::v1::CompletionChoice* choice = body->add_choices();
  choice->set_index(0);
  choice->set_text(std::string(text));
  choice->mutable_logprobs()->set_null_value(google::protobuf::NULL_VALUE);
  SetFinishReason(finish, choice->mutable_finish_reason());
  return choice;
}

openai::v1::ChatChoice* AddChatChoice(ChatCompletion* body, v1::FinishReason finish) {
  openai::v1::ChatChoice* choice = body->add_choices();
  choice->set_index(0);
  choice->mutable_logprobs()->set_null_value(google::protobuf::NULL_VALUE);
  SetFinishReason(finish, choice->mutable_finish_reason());
  return choice;
}

openai::v1::Model ModelOf(const v1::ModelInfo& info, uint32_t created) {
  openai::v1::Model model;
  model.set_id(info.model_name());
  model.set_object("model");
  model.set_created(created);
  model.set_owned_by("octet");
  if (info.context_length() > 0) model.set_max_model_len(info.context_length());
  return model;
}

}  // namespace

absl::string_view FinishReasonName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    default:
      return "";
  }
}

std::string RenderWhole(Endpoint endpoint, const ResponseHead& head, absl::string_view text, v1::FinishReason finish,
                        const v1::Usage& usage) {
  if (endpoint == Endpoint::kCompletions) {
    Completion body = Head<Completion>(head, "text_completion");
    AddCompletionChoice(&body, text, finish);
    SetUsage(usage, body.mutable_usage());
    return PrintJson(body);
  }
  ChatCompletion body = Head<ChatCompletion>(head, "chat.completion");
  openai::v1::ChatResponseMessage* message = AddChatChoice(&body, finish)->mutable_message();
  message->set_role("assistant");
  message->set_content(std::string(text));
  SetUsage(usage, body.mutable_usage());
  return PrintJson(body);
}

std::string RenderChatRoleChunk(const ResponseHead& head) {
  ChatCompletion body = Head<ChatCompletion>(head, "chat.completion.chunk");
  openai::v1::ChatResponseMessage* delta = AddChatChoice(&body, v1::FINISH_REASON_UNSPECIFIED)->mutable_delta();
  delta->set_role("assistant");
  delta->set_content("");
  return PrintJson(body);
}

std::string RenderChunk(Endpoint endpoint, const ResponseHead& head, absl::string_view text, v1::FinishReason finish) {
  if (endpoint == Endpoint::kCompletions) {
    Completion body = Head<Completion>(head, "text_completion");
    AddCompletionChoice(&body, text, finish);
    return PrintJson(body);
  }
  ChatCompletion body = Head<ChatCompletion>(head, "chat.completion.chunk");
  openai::v1::ChatResponseMessage* delta = AddChatChoice(&body, finish)->mutable_delta();
  if (!text.empty()) delta->set_content(std::string(text));
  return PrintJson(body);
}

std::string RenderUsageChunk(Endpoint endpoint, const ResponseHead& head, const v1::Usage& usage) {
  if (endpoint == Endpoint::kCompletions) {
    Completion body = Head<Completion>(head, "text_completion");
    SetUsage(usage, body.mutable_usage());
    return PrintJson(body);
  }
  ChatCompletion body = Head<ChatCompletion>(head, "chat.completion.chunk");
  SetUsage(usage, body.mutable_usage());
  return PrintJson(body);
}

std::string RenderModelList(const v1::ModelInfo& info, uint32_t created) {
  openai::v1::ModelList list;
  list.set_object("list");
  *list.add_data() = ModelOf(info, created);
  return PrintJson(list);
}

std::string RenderModel(const v1::ModelInfo& info, uint32_t created) { return PrintJson(ModelOf(info, created)); }

std::string SseEvent(absl::string_view json) { return absl::StrCat("data: ", json, "\n\n"); }

}  // namespace octet::router::http
