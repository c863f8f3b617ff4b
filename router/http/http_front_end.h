// HttpFrontEnd: the router's OpenAI-compatible HTTP front end: an HttpServer whose handler is an OpenAiService
// over the router's in-process channel, the API key check in front of it, and their ordered shutdown.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router/http/http_server.h"
#include "router/http/openai_service.h"
#include "router/security/api_keys.h"

namespace octet::router::http {

class HttpFrontEnd {
 public:
  // Binds options.host:options.port and serves; `channel` is RouterServer::InProcessChannel(). With `api_keys`,
  // every request but GET /health needs `Authorization: Bearer <key>` with one of them, and is answered 401
  // (OpenAI's "invalid_api_key" error) before its body is read otherwise.
  static absl::StatusOr<std::unique_ptr<HttpFrontEnd>> Start(const HttpServerOptions& options,
                                                             std::shared_ptr<grpc::Channel> channel,
                                                             std::optional<security::ApiKeySet> api_keys = {});
  ~HttpFrontEnd();  // Shutdown(now) unless already shut down

  int port() const { return server_->port(); }

  // Answers new requests with 503, lets running ones finish until `deadline`, cancels the gRPC calls of those
  // still running (a stream then ends with an error event), and stops the server. Call once.
  void Shutdown(absl::Time deadline);

 private:
  HttpFrontEnd() = default;

  std::optional<security::ApiKeySet> api_keys_;
  std::unique_ptr<OpenAiService> service_;
  std::unique_ptr<HttpServer> server_;
  bool shut_down_ = false;
};

}  // namespace octet::router::http
