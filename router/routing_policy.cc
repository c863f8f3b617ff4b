#include "router/routing_policy.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace octet::router {
namespace {

constexpr int64_t kDefaultMaxTokens = 256;
constexpr int kBytesPerToken = 4;

// FNV-1a, then a splitmix finalizer: stable across processes and platforms (unlike std::hash), so routers agree.
uint64_t StableHash(const void* data, size_t n, uint64_t seed = 0) {
  uint64_t h = 1469598103934665603ull ^ seed;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

// A worker's load for least-load: reported tokens in flight plus what was sent since, over its KV capacity.
double ReportedLoad(const WorkerLoadView& load) {
  const double tokens = std::max<int64_t>(0, load.tokens_in_flight + load.router_tokens_since);
  return tokens / static_cast<double>(std::max<int64_t>(load.kv_capacity_tokens, 1));
}

}  // namespace

RouteRequest DescribeRequest(const v1::GenerateRequest& request, int prefix_tokens) {
  RouteRequest route;
  int64_t prompt_tokens = 0;
  if (request.has_prompt_token_ids()) {
    const auto& ids = request.prompt_token_ids().ids();
    prompt_tokens = ids.size();
    const size_t n = std::min<size_t>(ids.size(), std::max(prefix_tokens, 0));
    route.has_prefix = n > 0;
    route.prefix_hash = StableHash(ids.data(), n * sizeof(int32_t));
  } else {
    const std::string& prompt = request.prompt();
    prompt_tokens = static_cast<int64_t>(prompt.size()) / kBytesPerToken + 1;
    const size_t n = std::min<size_t>(prompt.size(), static_cast<size_t>(std::max(prefix_tokens, 0)) * kBytesPerToken);
    route.has_prefix = n > 0;
    route.prefix_hash = StableHash(prompt.data(), n);
  }
  const int64_t max_tokens = request.sampling().max_tokens() > 0 ? request.sampling().max_tokens() : kDefaultMaxTokens;
  route.estimated_tokens = prompt_tokens + max_tokens;
  return route;
}

size_t RoundRobinPolicy::Pick(std::span<const size_t> candidates, const RouteRequest&) {
  const uint64_t turn = next_.fetch_add(1, std::memory_order_relaxed);
  return candidates[turn % candidates.size()];
}

size_t LeastLoadPolicy::Pick(std::span<const size_t> candidates, const RouteRequest&) {
  std::vector<WorkerLoadView> loads;
  loads.reserve(candidates.size());
  bool all_report = true;
  for (size_t w : candidates) {
    loads.push_back(pool_.Load(w));
    all_report = all_report && loads.back().reported && loads.back().kv_capacity_tokens > 0;
  }
  // Compare like with like: reported loads when every candidate reports, this router's own tokens otherwise.
  std::vector<double> score(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    score[i] = all_report ? ReportedLoad(loads[i]) : static_cast<double>(loads[i].router_tokens);
  }
  const double best = *std::min_element(score.begin(), score.end());
  std::vector<size_t> tied;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (score[i] <= best) tied.push_back(candidates[i]);
  }
  return tied[tie_break_.fetch_add(1, std::memory_order_relaxed) % tied.size()];
}

size_t PrefixAffinityPolicy::Pick(std::span<const size_t> candidates, const RouteRequest& request) {
  if (!request.has_prefix || candidates.size() == 1) return fallback_.Pick(candidates, request);
  // Each candidate's nearest ring point clockwise from the key, so adding or removing a worker moves only its keys.
  struct Point {
    uint64_t distance;
    size_t worker;
  };
  std::vector<Point> order;
  order.reserve(candidates.size());
  std::vector<int32_t> calls;  // by position in `candidates`, then looked up by worker below
  int64_t total_calls = 0;
  int32_t min_calls = std::numeric_limits<int32_t>::max();
  for (size_t w : candidates) {
    const std::string& address = pool_.address(w);
    uint64_t nearest = std::numeric_limits<uint64_t>::max();
    for (int v = 0; v < kVirtualNodes; ++v) {
      nearest = std::min(nearest, StableHash(address.data(), address.size(), v) - request.prefix_hash);
    }
    order.push_back({nearest, w});
    calls.push_back(pool_.Load(w).router_calls);
    total_calls += calls.back();
    min_calls = std::min(min_calls, calls.back());
  }
  std::sort(order.begin(), order.end(), [](const Point& a, const Point& b) { return a.distance < b.distance; });
  // Bounded load: a worker takes the request while it stays within load_factor x the average (counting this
  // request) or within kLoadSlack calls of the least busy one, so light load never breaks affinity.
  const double bound = load_factor_ * static_cast<double>(total_calls + 1) / static_cast<double>(candidates.size());
  for (const Point& p : order) {
    const int32_t c = calls[std::find(candidates.begin(), candidates.end(), p.worker) - candidates.begin()];
    if (c + 1 <= bound || c - min_calls < kLoadSlack) return p.worker;
  }
  return order.front().worker;
}

absl::StatusOr<std::unique_ptr<RoutingPolicy>> MakeRoutingPolicy(std::string_view name, const WorkerPool& pool) {
  if (name == "least-load") return std::make_unique<LeastLoadPolicy>(pool);
  if (name == "prefix-affinity") return std::make_unique<PrefixAffinityPolicy>(pool);
  if (name == "round-robin") return std::make_unique<RoundRobinPolicy>();
  return absl::InvalidArgumentError(
      absl::StrCat("--policy must be least-load, prefix-affinity or round-robin, got '", std::string(name), "'"));
}

absl::StatusOr<size_t> PickWorker(const WorkerPool& pool, RoutingPolicy& policy, const RouteRequest& request,
                                  std::span<const size_t> exclude) {
  std::vector<size_t> available = pool.HealthyWorkers();
  const size_t num_available = available.size();
  std::erase_if(available, [&](size_t w) { return std::find(exclude.begin(), exclude.end(), w) != exclude.end(); });
  if (available.empty()) {
    return absl::UnavailableError(absl::StrCat(exclude.empty() ? "no" : "no other", " healthy worker (",
                                               pool.NumListed(), " configured, ", num_available, " healthy)"));
  }
  return policy.Pick(available, request);
}

}  // namespace octet::router
