// What every forwarding reactor shares: the workers, the policy that picks one, the count of running calls and its
// bound, the retry budget, the metrics, and the rules that turn a worker's status into a decision.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "router/inflight_calls.h"
#include "router/router_observer.h"
#include "router/routing_policy.h"
#include "router/worker_pool.h"

namespace octet::router {

struct Forwarding {
  WorkerPool* pool;
  RoutingPolicy* policy;
  InflightCalls* inflight;
  RouterObserver* observer = nullptr;  // null: no metrics
  // Attempts a request may make before its first response message (a failed one is retried on another worker).
  int max_attempts = 3;
  // Calls running at once, at most; one more gets RESOURCE_EXHAUSTED at once (0 = no bound).
  int max_inflight = 0;
  // Prompt tokens that key prefix-affinity routing.
  int prefix_tokens = 128;
};

// How a worker call ended, from its status. The worker call carries the client's own deadline, so
// DEADLINE_EXCEEDED is the client's; CANCELLED is the client's when it cancelled, the worker's otherwise (a worker
// that stops cancels what it holds).
inline CallOutcome ClassifyCall(const grpc::Status& status, bool client_cancelled) {
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return CallOutcome::kSuccess;
    case grpc::StatusCode::CANCELLED:
      return client_cancelled ? CallOutcome::kClientError : CallOutcome::kWorkerFailure;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return CallOutcome::kOverloaded;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::DATA_LOSS:
      return CallOutcome::kWorkerFailure;
    default:  // INVALID_ARGUMENT, DEADLINE_EXCEEDED, OUT_OF_RANGE, FAILED_PRECONDITION, UNAUTHENTICATED, ...
      return CallOutcome::kClientError;
  }
}

// Whether another worker may do better: a broken or full one, not a bad request.
inline bool RetryElsewhere(CallOutcome outcome) {
  return outcome == CallOutcome::kWorkerFailure || outcome == CallOutcome::kOverloaded;
}

// absl and gRPC share the canonical status codes.
inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace octet::router
