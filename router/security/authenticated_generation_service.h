// AuthenticatedGenerationService: octet.v1.Generation behind an API key check. Every call must carry the metadata
// `authorization: Bearer <key>` with a key of the set; any other call ends at once with UNAUTHENTICATED
// "missing or invalid API key" and never reaches the service behind. grpc.health.v1 and reflection are separate
// services and stay open, so that load balancers and probes need no key.
#pragma once

#include <grpcpp/grpcpp.h>

#include "octet/v1/generation.grpc.pb.h"
#include "router/security/api_keys.h"

namespace octet::router::security {

class AuthenticatedGenerationService final : public v1::Generation::CallbackService {
 public:
  // `inner` serves the calls that pass (it is not registered itself); it and `keys` must outlive the server.
  AuthenticatedGenerationService(v1::Generation::CallbackService* inner, const ApiKeySet* keys)
      : inner_(inner), keys_(keys) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context, const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(grpc::CallbackServerContext* context,
                                                       const v1::ChatRequest* request) override;

 private:
  bool Authorized(const grpc::CallbackServerContext& context) const;

  v1::Generation::CallbackService* const inner_;
  const ApiKeySet* const keys_;
};

}  // namespace octet::router::security
