#include "router/routing_policy.h"

#include <gtest/gtest.h>

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
  for (int i = 0; i < 6; ++i) picks.push_back(policy.Pick(candidates));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 2, 5, 0, 2, 5}));
}

TEST(RoundRobinPolicy, ASingleCandidateIsAlwaysPicked) {
  RoundRobinPolicy policy;
  const std::vector<size_t> candidates = {3};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(policy.Pick(candidates), 3u);
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
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*PickWorker(pool, policy, tried), 2u);

  const std::vector<size_t> tried_both = {0, 2};
  absl::StatusOr<size_t> none = PickWorker(pool, policy, tried_both);
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

}  // namespace
}  // namespace octet::router
