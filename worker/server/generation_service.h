// GenerationService: octet.v1.Generation on the worker — validates, tokenizes and hands requests to the engine.
#pragma once

#include <grpcpp/grpcpp.h>

#include "octet/v1/generation.grpc.pb.h"
#include "worker/server/served_model.h"

namespace octet {

class GenerationService final : public v1::Generation::CallbackService {
 public:
  explicit GenerationService(ServedModel& model) : model_(model) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context, const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context, const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

 private:
  ServedModel& model_;
};

// The one place absl::Status becomes grpc::Status.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace octet
