// The router's octet.v1.Generation service: every call is forwarded to a worker (callback API, no thread blocks).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/statusor.h"

#include "octet/v1/generation.grpc.pb.h"
#include "router/forwarding.h"

namespace octet::router {

// The chat template of the served Qwen models (ChatML): `<|im_start|>{role}\n{content}<|im_end|>\n` per message,
// then the assistant's opening `<|im_start|>assistant\n`. INVALID_ARGUMENT naming the message for an empty
// conversation or a role other than system, user and assistant.
absl::StatusOr<std::string> RenderChatMl(const google::protobuf::RepeatedPtrField<v1::ChatMessage>& messages);
// The end of a turn: a chat's generation stops on it.
inline constexpr char kChatMlTurnEnd[] = "<|im_end|>";

class GenerationService final : public v1::Generation::CallbackService {
 public:
  // `pool`, `policy` and `inflight` must outlive every call (RouterServer waits for InflightCalls to drain).
  explicit GenerationService(Forwarding forwarding) : forwarding_(forwarding) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context, const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  // Writes the conversation in ChatML (RenderChatMl) and forwards it as a Generate call.
  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(grpc::CallbackServerContext* context,
                                                       const v1::ChatRequest* request) override;

 private:
  const Forwarding forwarding_;
};

}  // namespace octet::router
