// RouterServer: the router's gRPC server (Generation, health, reflection) wired to its worker pool.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "router/generation_service.h"
#include "router/inflight_calls.h"
#include "router/routing_policy.h"
#include "router/security/api_keys.h"
#include "router/security/authenticated_generation_service.h"
#include "router/security/tls_files.h"
#include "router/worker_pool.h"

namespace octet::router {

struct RouterOptions {
  std::string host = "0.0.0.0";      // address to bind; "0.0.0.0" or "[::]" for all interfaces
  int port = 0;                      // 0 picks a free port (see RouterServer::port())
  std::vector<std::string> workers;  // static workers; pool.dns_target adds resolved ones
  WorkerPoolOptions pool;
  std::string policy = "least-load";   // MakeRoutingPolicy
  int max_attempts = 3;                // per request, before its first response message
  int max_inflight = 4096;             // requests at once; more get RESOURCE_EXHAUSTED (0 = no bound)
  int prefix_tokens = 128;             // prompt tokens that key prefix-affinity
  RouterObserver* observer = nullptr;  // metrics; not owned, must outlive the server
  // TLS on the port with this certificate and key (security::ReadKeyPair); plaintext when empty.
  security::KeyPair tls;
  // When set, every octet.v1.Generation call needs `authorization: Bearer <key>` with one of these keys
  // (UNAUTHENTICATED otherwise); health and reflection stay open.
  std::optional<security::ApiKeySet> api_keys;
  // Largest request message accepted; a larger one gets RESOURCE_EXHAUSTED from gRPC.
  int max_request_bytes = 4 << 20;
};

class RouterServer {
 public:
  // Health-checks the workers once, then starts serving. The health service reports SERVING (overall and for
  // "octet.v1.Generation") while at least one worker is healthy.
  static absl::StatusOr<std::unique_ptr<RouterServer>> Start(RouterOptions options);
  ~RouterServer();  // Shutdown(absl::ZeroDuration()) unless already shut down

  const WorkerPool& pool() const { return *pool_; }
  int num_inflight() { return inflight_.count(); }
  // The bound port (the chosen one when RouterOptions::port was 0).
  int port() const { return port_; }
  // A channel into this server without a socket, for the router's other front ends (HTTP): calls through it get
  // the same routing, failover and health rules as those on the port. With API keys, its calls carry a random
  // token of this process that the key check accepts: the front end checks its clients' keys itself.
  std::shared_ptr<grpc::Channel> InProcessChannel() const;
  // Reports NOT_SERVING, stops taking calls, lets running calls finish for up to `grace` and then cancels them
  // (and with them their worker calls), and finally stops the health watcher. Call once, from one thread.
  void Shutdown(absl::Duration grace);

 private:
  explicit RouterServer(RouterOptions options);
  void OnHealthChange(size_t num_healthy);
  void ApplyServingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(health_mu_);

  const RouterOptions options_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<RoutingPolicy> policy_;
  InflightCalls inflight_;
  std::unique_ptr<GenerationService> service_;
  // With API keys: the keys plus in_process_token_, and the service that checks them in front of service_.
  security::ApiKeySet grpc_keys_;
  std::string in_process_token_;
  std::unique_ptr<security::AuthenticatedGenerationService> authenticated_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;

  absl::Mutex health_mu_;
  bool serving_ ABSL_GUARDED_BY(health_mu_) = false;
  bool health_frozen_ ABSL_GUARDED_BY(health_mu_) = true;  // until the server exists, and again from Shutdown
};

}  // namespace octet::router
