#include "router/http/http_front_end.h"

#include <utility>

#include "base/log.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {

absl::StatusOr<std::unique_ptr<HttpFrontEnd>> HttpFrontEnd::Start(const HttpServerOptions& options,
                                                                  std::shared_ptr<grpc::Channel> channel,
                                                                  std::optional<security::ApiKeySet> api_keys) {
  std::unique_ptr<HttpFrontEnd> front_end(new HttpFrontEnd());
  front_end->api_keys_ = std::move(api_keys);
  front_end->service_ = std::make_unique<OpenAiService>(std::move(channel), options.max_body_bytes);
  OpenAiService* service = front_end->service_.get();
  HttpGate gate;
  if (front_end->api_keys_.has_value()) {
    const security::ApiKeySet* keys = &*front_end->api_keys_;
    gate = [keys](const HttpRequest& request, HttpResponder& responder) {
      // Health stays open for load balancers and probes.
      if (request.path == "/health" || keys->Authorizes(request.authorization)) return false;
      SendError(responder, InvalidApiKey(), {{"WWW-Authenticate", "Bearer"}});
      return true;
    };
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(
      options, [service](const HttpRequest& request, HttpResponder& responder) { service->Handle(request, responder); },
      std::move(gate));
  if (!server.ok()) return server.status();
  front_end->server_ = *std::move(server);
  return front_end;
}

HttpFrontEnd::~HttpFrontEnd() {
  if (!shut_down_ && server_ != nullptr) Shutdown(absl::Now());
}

void HttpFrontEnd::Shutdown(absl::Time deadline) {
  shut_down_ = true;
  ActiveCalls& calls = service_->active_calls();
  calls.StartDraining();
  if (!calls.WaitIdle(deadline)) {
    OCTET_LOG(INFO, "http") << "cancelling the HTTP requests still running";
    calls.CancelAll();
  }
  server_->Stop();
}

}  // namespace octet::router::http
