#include "router/router_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "router/security/bearer_token_interceptor.h"

namespace octet::router {
namespace {

constexpr char kServiceName[] = "octet.v1.Generation";
// How long Shutdown waits for reactors to be deleted after the server has cancelled what was still running.
constexpr absl::Duration kReactorDrainTimeout = absl::Seconds(5);

std::string HostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace

RouterServer::RouterServer(RouterOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<RouterServer>> RouterServer::Start(RouterOptions options) {
  if (options.workers.empty() && options.pool.dns_target.empty()) {
    return absl::InvalidArgumentError("the router needs workers: --workers or --workers-dns");
  }
  if (options.max_attempts < 1) return absl::InvalidArgumentError("--max-attempts must be at least 1");
  if (options.max_request_bytes < 1) return absl::InvalidArgumentError("--max-request-bytes must be at least 1");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", options.port, " must be in [0, 65535]"));
  }
  std::unique_ptr<RouterServer> router(new RouterServer(std::move(options)));
  RouterServer* r = router.get();
  r->pool_ = std::make_unique<WorkerPool>(r->options_.workers, r->options_.pool);
  absl::StatusOr<std::unique_ptr<RoutingPolicy>> policy = MakeRoutingPolicy(r->options_.policy, *r->pool_);
  if (!policy.ok()) return policy.status();
  r->policy_ = *std::move(policy);
  r->service_ = std::make_unique<GenerationService>(Forwarding{.pool = r->pool_.get(),
                                                               .policy = r->policy_.get(),
                                                               .inflight = &r->inflight_,
                                                               .observer = r->options_.observer,
                                                               .max_attempts = r->options_.max_attempts,
                                                               .max_inflight = r->options_.max_inflight,
                                                               .prefix_tokens = r->options_.prefix_tokens});

  // The first round of health checks runs before the server starts, so the first calls already see healthy workers.
  r->pool_->Start([r](size_t num_healthy) { r->OnHealthChange(num_healthy); });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = HostPort(r->options_.host, r->options_.port);
  builder.AddListeningPort(address, security::MakeServerCredentials(r->options_.tls), &r->port_);
  builder.SetMaxReceiveMessageSize(r->options_.max_request_bytes);
  if (r->options_.api_keys.has_value()) {
    r->grpc_keys_ = *r->options_.api_keys;
    r->in_process_token_ = security::RandomToken();
    r->grpc_keys_.Add(r->in_process_token_);
    r->authenticated_service_ =
        std::make_unique<security::AuthenticatedGenerationService>(r->service_.get(), &r->grpc_keys_);
    builder.RegisterService(r->authenticated_service_.get());
  } else {
    builder.RegisterService(r->service_.get());
  }
  r->server_ = builder.BuildAndStart();
  if (r->server_ == nullptr || r->port_ == 0) {
    r->pool_->Stop();
    r->shut_down_ = true;
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  {
    absl::MutexLock lock(&r->health_mu_);
    r->health_frozen_ = false;
    r->ApplyServingLocked();
  }
  OCTET_LOG(INFO, "router") << "serving on " << HostPort(r->options_.host, r->port_) << " with "
                            << r->pool_->NumHealthy() << " of " << r->pool_->NumListed() << " workers healthy ("
                            << r->policy_->name() << " routing; "
                            << (r->options_.tls.cert_chain.empty() ? "plaintext" : "TLS") << "; "
                            << (r->options_.api_keys.has_value()
                                    ? absl::StrCat(r->options_.api_keys->size(), " API keys")
                                    : std::string("no API keys"))
                            << ")";
  return router;
}

std::shared_ptr<grpc::Channel> RouterServer::InProcessChannel() const {
  if (in_process_token_.empty()) return server_->InProcessChannel(grpc::ChannelArguments());
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(security::MakeBearerTokenInterceptorFactory(in_process_token_));
  return server_->experimental().InProcessChannelWithInterceptors(grpc::ChannelArguments(), std::move(interceptors));
}

RouterServer::~RouterServer() {
  if (!shut_down_) Shutdown(absl::ZeroDuration());
}

void RouterServer::OnHealthChange(size_t num_healthy) {
  absl::MutexLock lock(&health_mu_);
  serving_ = num_healthy > 0;
  ApplyServingLocked();
}

void RouterServer::ApplyServingLocked() {
  if (health_frozen_) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving_);
  health->SetServingStatus(kServiceName, serving_);
  OCTET_LOG(INFO, "router") << "health: " << (serving_ ? "SERVING" : "NOT_SERVING");
}

void RouterServer::Shutdown(absl::Duration grace) {
  shut_down_ = true;
  {
    absl::MutexLock lock(&health_mu_);
    health_frozen_ = true;
  }
  OCTET_LOG(INFO, "router") << "shutting down (grace " << absl::FormatDuration(grace) << ")";
  // NOT_SERVING first, so load balancers stop sending before the listener closes.
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  // Reactors outlive their client calls until their worker calls end (cancelled by now); they use the pool.
  if (!inflight_.WaitForZero(kReactorDrainTimeout)) {
    OCTET_LOG(WARNING, "router") << "calls to workers still running after " << kReactorDrainTimeout;
  }
  pool_->Stop();
  OCTET_LOG(INFO, "router") << "stopped";
}

}  // namespace octet::router
