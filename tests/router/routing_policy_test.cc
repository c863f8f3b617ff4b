#include "router/routing_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/router/fake_worker.h"

namespace octet::router {
namespace {

TEST(RoundRobinPolicy, TakesTheCandidatesInTurn) {
  RoundRobinPolicy policy;
  const std::vector<size_t> candidates = {0, 2, 5};
  std::vector<size_t> picks;
  for (int i = 0; i < 6; ++i) picks.push_back(policy.Pick(candidates, {}));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 2, 5, 0, 2, 5}));
}

TEST(RoundRobinPolicy, ASingleCandidateIsAlwaysPicked) {
  RoundRobinPolicy policy;
  const std::vector<size_t> candidates = {3};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(policy.Pick(candidates, {}), 3u);
}

TEST(PickWorker, PicksOnlyHealthyWorkersNotExcluded) {
  testing::FakeWorker a;
  testing::FakeWorker b;
  testing::FakeWorker down;
  const std::string down_address = down.address();
  down.Shutdown();
  WorkerPool pool({a.address(), down_address, b.address()}, {.health_check_interval = absl::Hours(1)});
  pool.Start(nullptr);
  RoundRobinPolicy policy;

  std::vector<size_t> picks;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<size_t> worker = PickWorker(pool, policy);
    ASSERT_TRUE(worker.ok()) << worker.status();
    picks.push_back(*worker);
  }
  EXPECT_EQ(picks, (std::vector<size_t>{0, 2, 0, 2}));

  const std::vector<size_t> tried = {0};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*PickWorker(pool, policy, {}, tried), 2u);

  const std::vector<size_t> tried_both = {0, 2};
  absl::StatusOr<size_t> none = PickWorker(pool, policy, {}, tried_both);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(none.status().message(), "no other healthy worker (3 configured, 2 healthy)");
  pool.Stop();
}

TEST(PickWorker, NoHealthyWorkerIsUnavailableWithTheCounts) {
  testing::FakeWorker down;
  const std::string address = down.address();
  down.Shutdown();
  WorkerPool pool({address}, {.health_check_interval = absl::Hours(1), .health_check_timeout = absl::Seconds(1)});
  pool.Start(nullptr);
  RoundRobinPolicy policy;
  absl::StatusOr<size_t> worker = PickWorker(pool, policy);
  EXPECT_EQ(worker.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(worker.status().message(), "no healthy worker (1 configured, 0 healthy)");
  pool.Stop();
}

v1::GenerateRequest TextRequest(const std::string& prompt, int max_tokens = 0) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.mutable_sampling()->set_max_tokens(max_tokens);
  return r;
}

TEST(DescribeRequest, KeysOnTheFirstPromptTokensAndEstimatesTokens) {
  const std::string head(4 * 8, 'a');  // 8 tokens' worth of text at 4 bytes a token
  const RouteRequest a = DescribeRequest(TextRequest(head + "first question"), /*prefix_tokens=*/8);
  const RouteRequest b = DescribeRequest(TextRequest(head + "another one"), 8);
  const RouteRequest c = DescribeRequest(TextRequest("b" + head), 8);
  EXPECT_TRUE(a.has_prefix);
  EXPECT_EQ(a.prefix_hash, b.prefix_hash);
  EXPECT_NE(a.prefix_hash, c.prefix_hash);
  EXPECT_EQ(DescribeRequest(TextRequest(std::string(40, 'x'), 100), 8).estimated_tokens, 40 / 4 + 1 + 100);
  EXPECT_EQ(DescribeRequest(TextRequest("x"), 8).estimated_tokens, 1 + 256);  // no max_tokens: 256 expected

  v1::GenerateRequest ids;
  for (int i = 0; i < 20; ++i) ids.mutable_prompt_token_ids()->add_ids(i);
  v1::GenerateRequest same_start = ids;
  same_start.mutable_prompt_token_ids()->set_ids(19, 777);
  EXPECT_EQ(DescribeRequest(ids, 16).prefix_hash, DescribeRequest(same_start, 16).prefix_hash);
  EXPECT_NE(DescribeRequest(ids, 20).prefix_hash, DescribeRequest(same_start, 20).prefix_hash);
  EXPECT_EQ(DescribeRequest(ids, 16).estimated_tokens, 20 + 256);
  EXPECT_FALSE(DescribeRequest(TextRequest(""), 16).has_prefix);
}

// Three healthy fake workers in one pool, started.
struct ThreeWorkers {
  explicit ThreeWorkers(bool with_load_reports = false)
      : a(with_load_reports),
        b(with_load_reports),
        c(with_load_reports),
        pool({a.address(), b.address(), c.address()}, {.health_check_interval = absl::Hours(1)}) {}
  testing::FakeWorker a, b, c;
  WorkerPool pool;
};

TEST(LeastLoadPolicy, PicksTheWorkerWithTheFewestOutstandingTokens) {
  ThreeWorkers w;
  w.pool.Start(nullptr);
  LeastLoadPolicy policy(w.pool);
  const std::vector<size_t> all = {0, 1, 2};
  w.pool.OnCallStart(0, 500);
  w.pool.OnCallStart(1, 100);
  w.pool.OnCallStart(2, 300);
  EXPECT_EQ(policy.Pick(all, {}), 1u);
  w.pool.OnCallStart(1, 1000);  // now 1100
  EXPECT_EQ(policy.Pick(all, {}), 2u);
  w.pool.OnCallEnd(0, 500, CallOutcome::kSuccess);  // 0 is idle again
  EXPECT_EQ(policy.Pick(all, {}), 0u);
  // Equal loads rotate.
  w.pool.OnCallEnd(1, 1100, CallOutcome::kSuccess);
  w.pool.OnCallEnd(2, 300, CallOutcome::kSuccess);
  std::set<size_t> seen;
  for (int i = 0; i < 6; ++i) seen.insert(policy.Pick(all, {}));
  EXPECT_EQ(seen.size(), 3u);
  w.pool.Stop();
}

TEST(LeastLoadPolicy, UsesLoadReportsRelativeToKvCapacity) {
  ThreeWorkers w(/*with_load_reports=*/true);
  auto report = [](testing::FakeWorker& worker, int64_t tokens, int64_t capacity) {
    std::lock_guard<std::mutex> lock(worker.control().mu);
    worker.control().load.set_num_tokens_in_flight(tokens);
    worker.control().load.set_kv_capacity_tokens(capacity);
  };
  report(w.a, 4000, 10000);  // 40%
  report(w.b, 3000, 5000);   // 60%: fewer tokens but a smaller cache
  report(w.c, 9000, 30000);  // 30%
  w.pool.Start(nullptr);     // the first round fetches the reports
  LeastLoadPolicy policy(w.pool);
  const std::vector<size_t> all = {0, 1, 2};
  ASSERT_TRUE(w.pool.Load(2).reported);
  EXPECT_EQ(policy.Pick(all, {}), 2u);
  // What this router sent since the report counts too: 4000 more tokens make c 43%, a is then the least.
  w.pool.OnCallStart(2, 4000);
  EXPECT_EQ(policy.Pick(all, {}), 0u);
  w.pool.Stop();
}

TEST(PrefixAffinityPolicy, SamePrefixSameWorkerAndSpreadsDifferentPrefixes) {
  ThreeWorkers w;
  w.pool.Start(nullptr);
  PrefixAffinityPolicy policy(w.pool);
  const std::vector<size_t> all = {0, 1, 2};
  std::set<size_t> used;
  for (int p = 0; p < 30; ++p) {
    RouteRequest r = DescribeRequest(TextRequest("system prompt number " + std::to_string(p) + std::string(600, '.')),
                                     /*prefix_tokens=*/128);
    const size_t first = policy.Pick(all, r);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(policy.Pick(all, r), first) << "prefix " << p;
    used.insert(first);
  }
  EXPECT_EQ(used.size(), 3u);  // 30 prefixes land on every worker
}

TEST(PrefixAffinityPolicy, BoundedLoadMovesRequestsOffAHotWorker) {
  ThreeWorkers w;
  w.pool.Start(nullptr);
  PrefixAffinityPolicy policy(w.pool, /*load_factor=*/1.25);
  const std::vector<size_t> all = {0, 1, 2};
  const RouteRequest r = DescribeRequest(TextRequest(std::string(600, 's')), 128);
  const size_t home = policy.Pick(all, r);
  // The same prefix keeps coming while its calls run: the home worker takes its share, then others help.
  std::vector<int> calls(3, 0);
  for (int i = 0; i < 12; ++i) {
    const size_t picked = policy.Pick(all, r);
    w.pool.OnCallStart(picked, 10);
    ++calls[picked];
  }
  // The home worker takes the first kLoadSlack, then the load spreads: nobody runs over
  // max(1.25 x the average, least busy + slack).
  EXPECT_EQ(calls[home], 5);
  for (int c : calls) EXPECT_LE(c, 5);
  EXPECT_EQ(calls[0] + calls[1] + calls[2], 12);
  EXPECT_GE(*std::min_element(calls.begin(), calls.end()), 1);
  w.pool.Stop();
}

TEST(PrefixAffinityPolicy, ARemovedWorkerMovesOnlyItsOwnPrefixes) {
  ThreeWorkers w;
  w.pool.Start(nullptr);
  PrefixAffinityPolicy policy(w.pool);
  const std::vector<size_t> all = {0, 1, 2};
  const std::vector<size_t> without_b = {0, 2};
  for (int p = 0; p < 40; ++p) {
    const RouteRequest r = DescribeRequest(TextRequest("prefix " + std::to_string(p) + std::string(600, '-')), 128);
    const size_t before = policy.Pick(all, r);
    const size_t after = policy.Pick(without_b, r);
    if (before != 1) EXPECT_EQ(after, before) << "prefix " << p;
  }
  w.pool.Stop();
}

TEST(MakeRoutingPolicy, KnowsThePoliciesByName) {
  testing::FakeWorker a;
  WorkerPool pool({a.address()}, {.health_check_interval = absl::Hours(1)});
  for (const char* name : {"least-load", "prefix-affinity", "round-robin"}) {
    absl::StatusOr<std::unique_ptr<RoutingPolicy>> policy = MakeRoutingPolicy(name, pool);
    ASSERT_TRUE(policy.ok()) << name;
    EXPECT_EQ((*policy)->name(), name);
  }
  absl::StatusOr<std::unique_ptr<RoutingPolicy>> bad = MakeRoutingPolicy("random", pool);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "--policy must be least-load, prefix-affinity or round-robin, got 'random'");
}

}  // namespace
}  // namespace octet::router
