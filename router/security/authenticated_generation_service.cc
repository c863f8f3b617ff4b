#include "router/security/authenticated_generation_service.h"

#include "absl/strings/string_view.h"

namespace octet::router::security {
namespace {

constexpr char kUnauthenticatedMessage[] = "missing or invalid API key";

grpc::Status Unauthenticated() { return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticatedMessage); }

// A refused Generate: finishes at once without a message.
class RefusedStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  RefusedStream() { Finish(Unauthenticated()); }
  void OnDone() override { delete this; }
};

grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* context) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Unauthenticated());
  return reactor;
}

}  // namespace

bool AuthenticatedGenerationService::Authorized(const grpc::CallbackServerContext& context) const {
  // gRPC lower-cases metadata keys. Only the first `authorization` entry counts.
  const auto& metadata = context.client_metadata();
  const auto entry = metadata.find("authorization");
  const absl::string_view value =
      entry == metadata.end() ? absl::string_view() : absl::string_view(entry->second.data(), entry->second.size());
  return keys_->Authorizes(value);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* AuthenticatedGenerationService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  if (!Authorized(*context)) return new RefusedStream();
  return inner_->Generate(context, request);
}

grpc::ServerWriteReactor<v1::GenerateResponse>* AuthenticatedGenerationService::Chat(
    grpc::CallbackServerContext* context, const v1::ChatRequest* request) {
  if (!Authorized(*context)) return new RefusedStream();
  return inner_->Chat(context, request);
}

grpc::ServerUnaryReactor* AuthenticatedGenerationService::Tokenize(grpc::CallbackServerContext* context,
                                                                   const v1::TokenizeRequest* request,
                                                                   v1::TokenizeResponse* response) {
  if (!Authorized(*context)) return Refuse(context);
  return inner_->Tokenize(context, request, response);
}

grpc::ServerUnaryReactor* AuthenticatedGenerationService::GetModelInfo(grpc::CallbackServerContext* context,
                                                                       const v1::GetModelInfoRequest* request,
                                                                       v1::ModelInfo* response) {
  if (!Authorized(*context)) return Refuse(context);
  return inner_->GetModelInfo(context, request, response);
}

}  // namespace octet::router::security
