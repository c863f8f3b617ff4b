// Counts the router's calls that are still running (reactors not yet deleted), so shutdown can wait for them and
// admission can bound them.
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
  // Begin, unless `limit` (> 0) calls are already running.
  bool TryBegin(int limit) {
    absl::MutexLock lock(&mu_);
    if (limit > 0 && count_ >= limit) return false;
    ++count_;
    return true;
  }
  void End() {
    absl::MutexLock lock(&mu_);
    --count_;
  }
  int count() {
    absl::MutexLock lock(&mu_);
    return count_;
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
