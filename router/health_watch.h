// HealthWatch: one grpc.health.v1 Health/Watch stream to one worker, passing on every status the worker sends and
// how the stream ended.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "router/inflight_calls.h"

namespace octet::router {

// A ClientReadReactor on Watch for the service "" (the worker's overall status). It owns the call's state and keeps
// itself alive (a reference to itself, dropped in OnDone) until the stream has ended; owners hold further
// references, so Cancel() and AwaitFirstResult() stay safe whether or not the stream has ended.
//
// Lifetime: `live` counts the object from construction until its destruction, which comes after OnDone (the last
// reaction) and after the owners' references are gone; the count drops once every member is destroyed, so an owner
// that waits for it to reach zero knows no HealthWatch is left.
class HealthWatch final : public grpc::ClientReadReactor<grpc::health::v1::HealthCheckResponse>,
                          public std::enable_shared_from_this<HealthWatch> {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  // Both run on gRPC's threads and must not block. on_status runs for every message; on_end runs once, after the
  // last on_status. `watch` identifies the stream, so an owner can ignore a stream it has given up on.
  struct Callbacks {
    std::function<void(const HealthWatch* watch, ServingStatus status)> on_status;
    std::function<void(const HealthWatch* watch, const grpc::Status& status)> on_end;
  };

  static std::shared_ptr<HealthWatch> Create(Callbacks callbacks, InflightCalls* live);
  HealthWatch(const HealthWatch&) = delete;
  HealthWatch& operator=(const HealthWatch&) = delete;

  // Starts the stream; call once.
  void Start(grpc::health::v1::Health::Stub* stub);
  // Ends the stream: on_end follows with CANCELLED (unless the stream had ended already). Also before Start.
  void Cancel() { context_.TryCancel(); }
  // Waits until the first message has been passed on or the stream has ended, at most until `deadline`; false if
  // neither happened by then.
  bool AwaitFirstResult(absl::Time deadline);

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  // Counts the object in `live` for as long as it exists: as the first member it is destroyed last.
  class LiveToken {
   public:
    explicit LiveToken(InflightCalls* live) : live_(live) { live_->Begin(); }
    ~LiveToken() { live_->End(); }
    LiveToken(const LiveToken&) = delete;
    LiveToken& operator=(const LiveToken&) = delete;

   private:
    InflightCalls* live_;
  };

  HealthWatch(Callbacks callbacks, InflightCalls* live) : live_(live), callbacks_(std::move(callbacks)) {}
  void Settle();

  LiveToken live_;
  const Callbacks callbacks_;
  grpc::ClientContext context_;
  grpc::health::v1::HealthCheckRequest request_;  // service "": the server's overall status
  grpc::health::v1::HealthCheckResponse response_;
  std::shared_ptr<HealthWatch> self_;  // set by Start, dropped by OnDone

  absl::Mutex mu_;
  bool settled_ ABSL_GUARDED_BY(mu_) = false;  // a message was passed on, or the stream ended
};

}  // namespace octet::router
