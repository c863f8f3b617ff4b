// ActiveCalls: the HTTP requests being served and the gRPC calls they run, so that shutdown can refuse new
// requests, wait for running ones, and cancel what is left.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace octet::router::http {

class ActiveCalls {
 public:
  // Counts a request in; false (and not counted) once draining: the request must be refused.
  bool Begin() {
    absl::MutexLock lock(&mu_);
    if (draining_) return false;
    ++running_;
    return true;
  }
  void End() {
    absl::MutexLock lock(&mu_);
    --running_;
  }

  // A gRPC call of a running request; cancelled at once if CancelAll already ran.
  void Attach(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    contexts_.insert(context);
    if (cancelled_) context->TryCancel();
  }
  void Detach(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    contexts_.erase(context);
  }

  // From now on Begin() refuses.
  void StartDraining() {
    absl::MutexLock lock(&mu_);
    draining_ = true;
  }
  // Waits until no request runs or `deadline` passes; true when none runs.
  bool WaitIdle(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; };
    return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  }
  // Cancels every attached gRPC call, and every one attached later.
  void CancelAll() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    for (grpc::ClientContext* context : contexts_) context->TryCancel();
  }

 private:
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace octet::router::http
