#include "router/generation_service.h"

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "router/generate_reactor.h"
#include "router/unary_forward_reactor.h"

namespace octet::router {
namespace {

// Ends a call at once with `status` (a chat that cannot be written as a prompt).
class RefusedChat final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RefusedChat(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

absl::StatusOr<std::string> RenderChatMl(const google::protobuf::RepeatedPtrField<v1::ChatMessage>& messages) {
  if (messages.empty()) return absl::InvalidArgumentError("`messages` must not be empty");
  std::string prompt;
  for (int i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role();
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(
          absl::StrCat("`messages[", i, "].role` must be system, user or assistant, got '", role, "'"));
    }
    absl::StrAppend(&prompt, "<|im_start|>", role, "\n", messages[i].content(), kChatMlTurnEnd, "\n");
  }
  absl::StrAppend(&prompt, "<|im_start|>assistant\n");
  return prompt;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerationService::Generate(grpc::CallbackServerContext* context,
                                                                            const v1::GenerateRequest* request) {
  return new GenerateReactor(forwarding_, context, request);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerationService::Chat(grpc::CallbackServerContext* context,
                                                                        const v1::ChatRequest* request) {
  absl::StatusOr<std::string> prompt = RenderChatMl(request->messages());
  if (!prompt.ok()) return new RefusedChat(ToGrpcStatus(prompt.status()));
  v1::GenerateRequest generate;
  generate.set_request_id(request->request_id());
  generate.set_prompt(*std::move(prompt));
  *generate.mutable_sampling() = request->sampling();
  generate.mutable_sampling()->add_stop(kChatMlTurnEnd);
  generate.set_priority(request->priority());
  return new GenerateReactor(forwarding_, context, &generate);  // the reactor keeps its own copy
}

grpc::ServerUnaryReactor* GenerationService::Tokenize(grpc::CallbackServerContext* context,
                                                      const v1::TokenizeRequest* request,
                                                      v1::TokenizeResponse* response) {
  using Reactor = UnaryForwardReactor<v1::TokenizeRequest, v1::TokenizeResponse>;
  return new Reactor(
      forwarding_, context, request, response,
      [](v1::Generation::Stub* stub, grpc::ClientContext* client_context, const v1::TokenizeRequest* worker_request,
         v1::TokenizeResponse* worker_response, std::function<void(grpc::Status)> done) {
        stub->async()->Tokenize(client_context, worker_request, worker_response, std::move(done));
      });
}

grpc::ServerUnaryReactor* GenerationService::GetModelInfo(grpc::CallbackServerContext* context,
                                                          const v1::GetModelInfoRequest* request,
                                                          v1::ModelInfo* response) {
  using Reactor = UnaryForwardReactor<v1::GetModelInfoRequest, v1::ModelInfo>;
  return new Reactor(
      forwarding_, context, request, response,
      [](v1::Generation::Stub* stub, grpc::ClientContext* client_context, const v1::GetModelInfoRequest* worker_request,
         v1::ModelInfo* worker_response, std::function<void(grpc::Status)> done) {
        stub->async()->GetModelInfo(client_context, worker_request, worker_response, std::move(done));
      });
}

}  // namespace octet::router
