// How the router picks a worker for a request (--policy):
//  - least-load (default): the worker with the fewest outstanding tokens relative to its KV capacity, from its latest
//    load report plus what this router sent it since (this router's own outstanding tokens for workers that do not
//    report);
//  - prefix-affinity: consistent hashing of the prompt's first tokens, so requests that share a prefix reach the
//    worker that has it cached, with a bounded-load fallback (a worker over 1.25x the average of this router's calls,
//    and more than 4 calls above the least busy one, passes the request to the next one on the ring);
//  - round-robin: the available workers in turn.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "octet/v1/generation.pb.h"
#include "router/worker_pool.h"

namespace octet::router {

// What a policy knows of a request.
struct RouteRequest {
  bool has_prefix = false;
  uint64_t prefix_hash = 0;      // hash of the first prompt tokens (prefix-affinity)
  int64_t estimated_tokens = 1;  // prompt + expected completion tokens (load accounting)
};

// A Generate request as routing sees it: the prefix is the first `prefix_tokens` token ids, or about as many
// characters of text as that many tokens take (4 a token); tokens are counted the same way, plus max_tokens
// (256 when unset).
RouteRequest DescribeRequest(const v1::GenerateRequest& request, int prefix_tokens);

class RoutingPolicy {
 public:
  virtual ~RoutingPolicy() = default;
  virtual std::string_view name() const = 0;
  // Picks one of `candidates` (indices into the pool, never empty). Called concurrently from request threads.
  virtual size_t Pick(std::span<const size_t> candidates, const RouteRequest& request) = 0;
};

// Takes the candidates in turn: with k candidates, k consecutive requests go to k different workers.
class RoundRobinPolicy final : public RoutingPolicy {
 public:
  std::string_view name() const override { return "round-robin"; }
  size_t Pick(std::span<const size_t> candidates, const RouteRequest& request) override;

 private:
  std::atomic<uint64_t> next_{0};
};

class LeastLoadPolicy final : public RoutingPolicy {
 public:
  explicit LeastLoadPolicy(const WorkerPool& pool) : pool_(pool) {}
  std::string_view name() const override { return "least-load"; }
  size_t Pick(std::span<const size_t> candidates, const RouteRequest& request) override;

 private:
  const WorkerPool& pool_;
  std::atomic<uint64_t> tie_break_{0};  // rotates among equally loaded workers
};

class PrefixAffinityPolicy final : public RoutingPolicy {
 public:
  static constexpr int kVirtualNodes = 64;  // ring points a worker
  static constexpr int kLoadSlack = 4;      // calls above the least busy worker that never count as overload
  explicit PrefixAffinityPolicy(const WorkerPool& pool, double load_factor = 1.25)
      : pool_(pool), load_factor_(load_factor), fallback_(pool) {}
  std::string_view name() const override { return "prefix-affinity"; }
  size_t Pick(std::span<const size_t> candidates, const RouteRequest& request) override;

 private:
  const WorkerPool& pool_;
  const double load_factor_;
  LeastLoadPolicy fallback_;  // for requests without a prompt (Tokenize, GetModelInfo)
};

// --policy: least-load, prefix-affinity, round-robin.
absl::StatusOr<std::unique_ptr<RoutingPolicy>> MakeRoutingPolicy(std::string_view name, const WorkerPool& pool);

// Picks an available worker of `pool` that is not in `exclude` (the workers a request already failed on).
// UNAVAILABLE "no healthy worker (N configured, 0 healthy)" when there is none ("no other healthy worker (...)"
// when the only healthy ones are excluded).
absl::StatusOr<size_t> PickWorker(const WorkerPool& pool, RoutingPolicy& policy, const RouteRequest& request = {},
                                  std::span<const size_t> exclude = {});

}  // namespace octet::router
