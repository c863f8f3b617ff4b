// The router's octet.v1.Generation service: every call is forwarded to a worker (callback API, no thread blocks).
#pragma once

#include <grpcpp/grpcpp.h>

#include "octet/v1/generation.grpc.pb.h"
#include "router/forwarding.h"

namespace octet::router {

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

 private:
  const Forwarding forwarding_;
};

}  // namespace octet::router
