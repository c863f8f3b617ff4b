// How the router picks a worker for a request. Round-robin over healthy workers for now; a load- or
// prefix-aware policy replaces RoundRobinPolicy behind the same interface.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "router/worker_pool.h"

namespace octet::router {

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  // Picks one of `candidates` (indices into the pool, never empty). Called concurrently from request threads.
  virtual size_t Pick(std::span<const size_t> candidates) = 0;
};

// Takes the healthy workers in turn: with k healthy workers, k consecutive requests go to k different workers.
class RoundRobinPolicy final : public RoutingPolicy {
 public:
  size_t Pick(std::span<const size_t> candidates) override;

 private:
  std::atomic<uint64_t> next_{0};
};

// Picks a healthy worker of `pool` that is not in `exclude` (the workers a request already failed on).
// UNAVAILABLE "no healthy worker (N configured, 0 healthy)" when there is none ("no other healthy worker (...)"
// when the only healthy ones are excluded).
absl::StatusOr<size_t> PickWorker(const WorkerPool& pool, RoutingPolicy& policy, std::span<const size_t> exclude = {});

}  // namespace octet::router
