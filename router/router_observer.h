// RouterObserver: what the forwarding reactors tell the router's metrics, as it happens. Called on gRPC threads,
// concurrently: implementations must be thread-safe and quick.
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

namespace octet::router {

class RouterObserver {
 public:
  virtual ~RouterObserver() = default;
  // A request was refused at the door (too many in flight).
  virtual void OnRejected() {}
  // An attempt of a request was sent to `worker` by `policy` (retries included).
  virtual void OnRouted(std::string_view policy, std::string_view worker) {}
  // A failed attempt is retried on another worker; `code` is how it failed.
  virtual void OnRetry(grpc::StatusCode code) {}
  // A request's first response message reached the router, `seconds` after the request arrived.
  virtual void OnFirstMessage(double seconds) {}
  // A request ended with `code`, its last attempt on `worker` (empty if none was tried), `seconds` after it
  // arrived; `after_first_message` when a worker failed it after its response had started.
  virtual void OnRequestEnd(std::string_view worker, grpc::StatusCode code, double seconds, bool after_first_message) {}
};

}  // namespace octet::router
