#include "router/generation_service.h"

#include <functional>
#include <utility>

#include "router/generate_reactor.h"
#include "router/unary_forward_reactor.h"

namespace octet::router {

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerationService::Generate(grpc::CallbackServerContext* context,
                                                                            const v1::GenerateRequest* request) {
  return new GenerateReactor(forwarding_, context, request);
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
