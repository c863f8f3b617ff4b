#include "router/routing_policy.h"

#include <algorithm>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace octet::router {

size_t RoundRobinPolicy::Pick(std::span<const size_t> candidates) {
  const uint64_t turn = next_.fetch_add(1, std::memory_order_relaxed);
  return candidates[turn % candidates.size()];
}

absl::StatusOr<size_t> PickWorker(const WorkerPool& pool, RoutingPolicy& policy, std::span<const size_t> exclude) {
  std::vector<size_t> healthy = pool.HealthyWorkers();
  const size_t num_healthy = healthy.size();
  std::erase_if(healthy, [&](size_t w) { return std::find(exclude.begin(), exclude.end(), w) != exclude.end(); });
  if (healthy.empty()) {
    return absl::UnavailableError(absl::StrCat(exclude.empty() ? "no" : "no other", " healthy worker (", pool.size(),
                                               " configured, ", num_healthy, " healthy)"));
  }
  return policy.Pick(healthy);
}

}  // namespace octet::router
