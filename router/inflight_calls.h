// Counts the router's calls that are still running (reactors not yet deleted), so shutdown can wait for them.
#pragma once

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace octet::router {

class InflightCalls {
 public:
  void Begin() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  void End() {
    absl::MutexLock lock(&mu_);
    --count_;
  }
  // True when the count reached zero within `timeout`.
  bool WaitForZero(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto zero = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&zero), timeout);
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace octet::router
