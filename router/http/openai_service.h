// OpenAiService: the OpenAI-compatible endpoints over the router's own Generation service (a channel into the
// router, so that HTTP calls get the same routing, failover and health rules as gRPC ones).
//   POST /v1/completions, POST /v1/chat/completions (whole or server-sent events), GET /v1/models[/{id}],
//   GET /health.
// Runs on the HTTP server's connection threads and blocks on its gRPC call; holds no state between requests
// beyond the model catalog.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octet/v1/generation.grpc.pb.h"
#include "router/http/active_calls.h"
#include "router/http/http_server.h"
#include "router/http/model_catalog.h"
#include "router/http/openai_request.h"
#include "router/http/openai_response.h"

namespace octet::router::http {

class OpenAiService {
 public:
  // `channel` serves octet.v1.Generation and grpc.health.v1.Health (RouterServer::InProcessChannel()).
  // `max_body_bytes` is only quoted in the 413 message.
  OpenAiService(std::shared_ptr<grpc::Channel> channel, int64_t max_body_bytes);

  // Serves one request (the HttpServer's handler).
  void Handle(const HttpRequest& request, HttpResponder& responder);

  // For shutdown: refuse new requests, wait for running ones, cancel their gRPC calls.
  ActiveCalls& active_calls() { return calls_; }

 private:
  void Completions(const HttpRequest& request, HttpResponder& responder);
  void ChatCompletions(const HttpRequest& request, HttpResponder& responder);
  void Models(const std::string& path, HttpResponder& responder);
  void Health(HttpResponder& responder);
  // Runs the call and answers: one JSON body, or a stream of events. The HTTP status is decided by the first
  // message (or the error before it): errors after it arrive as a `data: {"error": ...}` event.
  void Generate(const GenerationCall& call, Endpoint endpoint, const std::string& model, HttpResponder& responder);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Generation::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  const int64_t max_body_bytes_;
  ModelCatalog catalog_;
  ActiveCalls calls_;
};

// Sends `status` as an OpenAI error body with its HTTP status.
void SendError(HttpResponder& responder, const absl::Status& status, const HttpHeaders& headers = {});

}  // namespace octet::router::http
