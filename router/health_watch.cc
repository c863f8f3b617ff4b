#include "router/health_watch.h"

#include <utility>

namespace octet::router {

std::shared_ptr<HealthWatch> HealthWatch::Create(Callbacks callbacks, InflightCalls* live) {
  // Not make_shared: the constructor is private.
  return std::shared_ptr<HealthWatch>(new HealthWatch(std::move(callbacks), live));
}

void HealthWatch::Start(grpc::health::v1::Health::Stub* stub) {
  self_ = shared_from_this();
  stub->async()->Watch(&context_, &request_, this);
  StartRead(&response_);
  StartCall();
}

bool HealthWatch::AwaitFirstResult(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(&settled_), deadline);
}

void HealthWatch::Settle() {
  absl::MutexLock lock(&mu_);
  settled_ = true;
}

void HealthWatch::OnReadDone(bool ok) {
  if (!ok) return;  // the stream has ended: OnDone follows
  callbacks_.on_status(this, response_.status());
  Settle();  // after on_status: a waiter sees its effect
  StartRead(&response_);
}

void HealthWatch::OnDone(const grpc::Status& status) {
  callbacks_.on_end(this, status);
  Settle();
  // Possibly the last reference: the object is destroyed when this returns, and nothing of it is touched after.
  std::shared_ptr<HealthWatch> self = std::move(self_);
}

}  // namespace octet::router
