// What every forwarding reactor shares: the workers, the policy that picks one, the count of running calls, and
// the one place where absl::Status becomes grpc::Status.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "router/inflight_calls.h"
#include "router/routing_policy.h"
#include "router/worker_pool.h"

namespace octet::router {

struct Forwarding {
  WorkerPool* pool;
  RoutingPolicy* policy;
  InflightCalls* inflight;
};

// A call that failed with UNAVAILABLE before any response reached the client is retried once on another worker.
inline constexpr int kMaxAttempts = 2;

// absl and gRPC share the canonical status codes.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace octet::router
