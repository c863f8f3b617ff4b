#include "router/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "tests/router/fake_worker.h"

namespace octet::router {
namespace {

TEST(ParseWorkerAddresses, AcceptsHostPortListsAndTargetUris) {
  absl::StatusOr<std::vector<std::string>> workers =
      ParseWorkerAddresses(" 127.0.0.1:5000, worker-1.svc:6000 ,[::1]:7000,dns:///workers.octet:8000");
  ASSERT_TRUE(workers.ok()) << workers.status();
  EXPECT_EQ(*workers, (std::vector<std::string>{"127.0.0.1:5000", "worker-1.svc:6000", "[::1]:7000",
                                                "dns:///workers.octet:8000"}));
}

TEST(ParseWorkerAddresses, ErrorsNameTheEntryAndTheRule) {
  struct Case {
    std::string flag;
    std::string message;
  };
  const Case cases[] = {
      {"", "--workers must list at least one HOST:PORT"},
      {"a:1,,b:2", "--workers: entry 2 is empty"},
      {"localhost", "--workers: 'localhost' must be HOST:PORT"},
      {":5000", "--workers: ':5000' must be HOST:PORT"},
      {"a:0", "--workers: 'a:0' must end in a port number in [1, 65535]"},
      {"a:65536", "--workers: 'a:65536' must end in a port number in [1, 65535]"},
      {"a:http", "--workers: 'a:http' must end in a port number in [1, 65535]"},
      {"::1:5000", "--workers: '::1:5000' must write an IPv6 host in brackets: [ADDR]:PORT"},
      {"a:1,a:1", "--workers: 'a:1' is listed twice"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> workers = ParseWorkerAddresses(c.flag);
    ASSERT_FALSE(workers.ok()) << c.flag;
    EXPECT_EQ(workers.status().code(), absl::StatusCode::kInvalidArgument) << c.flag;
    EXPECT_EQ(workers.status().message(), c.message) << c.flag;
  }
}

// Polls `predicate` for up to 5 s.
template <typename Predicate>
bool Eventually(Predicate predicate) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

TEST(WorkerPool, HealthChecksMarkWorkersAndReportTheHealthyCount) {
  testing::FakeWorker worker;
  testing::FakeWorker unreachable;
  const std::string unreachable_address = unreachable.address();
  unreachable.Shutdown();

  WorkerPool pool({worker.address(), unreachable_address},
                  {.health_check_interval = absl::Milliseconds(50), .health_check_timeout = absl::Milliseconds(500)});
  std::atomic<int> reported{-1};
  std::atomic<int> reports{0};
  pool.Start([&](size_t healthy) {
    reported = static_cast<int>(healthy);
    ++reports;
  });
  // The first round completes inside Start.
  EXPECT_EQ(reports.load(), 1);
  EXPECT_EQ(reported.load(), 1);
  EXPECT_TRUE(pool.IsHealthy(0));
  EXPECT_FALSE(pool.IsHealthy(1));
  EXPECT_EQ(pool.HealthyWorkers(), std::vector<size_t>{0});
  EXPECT_EQ(pool.address(1), unreachable_address);

  worker.SetServing(false);
  EXPECT_TRUE(Eventually([&] { return reported.load() == 0 && !pool.IsHealthy(0); }));
  worker.SetServing(true);
  EXPECT_TRUE(Eventually([&] { return reported.load() == 1 && pool.IsHealthy(0); }));

  // A connected worker that answers UNAVAILABLE itself stays healthy; its health checks decide.
  pool.ReportUnavailable(0, "draining");
  EXPECT_TRUE(pool.IsHealthy(0));
  // One that cannot be reached any more is marked unhealthy at once, before the next check.
  pool.Stop();
  worker.Shutdown();
  EXPECT_TRUE(Eventually([&] {
    pool.ReportUnavailable(0, "connection refused");
    return !pool.IsHealthy(0);
  }));
}

TEST(WorkerPool, StopReturnsPromptlyWithASlowIntervalAndIsIdempotent) {
  testing::FakeWorker worker;
  WorkerPool pool({worker.address()}, {.health_check_interval = absl::Hours(1)});
  pool.Start(nullptr);
  const auto start = std::chrono::steady_clock::now();
  pool.Stop();
  pool.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(ResolveWorkerAddresses, ResolvesLocalhostAndRejectsBadTargets) {
  absl::StatusOr<std::vector<std::string>> local = ResolveWorkerAddresses("localhost:5000");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_FALSE(local->empty());
  for (const std::string& a : *local) EXPECT_TRUE(a == "127.0.0.1:5000" || a == "[::1]:5000") << a;
  absl::StatusOr<std::vector<std::string>> unknown = ResolveWorkerAddresses("no-such-host.invalid:5000");
  ASSERT_TRUE(unknown.ok());
  EXPECT_TRUE(unknown->empty());  // not there yet: not an error
  EXPECT_EQ(ResolveWorkerAddresses("localhost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveWorkerAddresses("localhost:0").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkerPool, DnsMembershipFollowsTheResolution) {
  testing::FakeWorker a;
  testing::FakeWorker b;
  absl::Mutex mu;
  std::vector<std::string> resolved;  // guarded by mu
  {
    absl::MutexLock lock(&mu);
    resolved = {};
  }
  WorkerPoolOptions options{.health_check_interval = absl::Milliseconds(50),
                            .dns_target = "workers.test:1",
                            .dns_refresh_interval = absl::Milliseconds(50)};
  options.resolver = [&](std::string_view) -> absl::StatusOr<std::vector<std::string>> {
    absl::MutexLock lock(&mu);
    return resolved;
  };
  WorkerPool pool({}, options);
  std::atomic<int> available{-1};
  pool.Start([&](size_t n) { available = static_cast<int>(n); });
  EXPECT_EQ(available.load(), 0);  // no workers yet: the router still starts
  EXPECT_EQ(pool.NumListed(), 0u);
  {
    absl::MutexLock lock(&mu);
    resolved = {a.address(), b.address()};
  }
  EXPECT_TRUE(Eventually([&] { return available.load() == 2; }));
  {
    absl::MutexLock lock(&mu);
    resolved = {b.address()};
  }
  EXPECT_TRUE(Eventually([&] { return available.load() == 1 && !pool.IsListed(0) && pool.IsAvailable(1); }));
  EXPECT_EQ(pool.address(0), a.address());  // the slot stays; it is only unlisted
  {
    absl::MutexLock lock(&mu);
    resolved = {a.address(), b.address()};
  }
  EXPECT_TRUE(Eventually([&] { return available.load() == 2 && pool.IsListed(0); }));
  EXPECT_EQ(pool.size(), 2u);  // a came back into its old slot
  pool.Stop();
}

TEST(WorkerPool, CircuitBreakerTakesAFailingWorkerOutForACooldown) {
  testing::FakeWorker a;
  WorkerPool pool({a.address()}, {.health_check_interval = absl::Hours(1),
                                  .circuit_breaker_failures = 3,
                                  .circuit_breaker_cooldown = absl::Milliseconds(300)});
  pool.Start(nullptr);
  ASSERT_TRUE(pool.IsAvailable(0));
  // Client errors and a full worker never count; a success resets the count.
  for (int i = 0; i < 5; ++i) {
    pool.OnCallStart(0, 1);
    pool.OnCallEnd(0, 1, CallOutcome::kClientError);
    pool.OnCallStart(0, 1);
    pool.OnCallEnd(0, 1, CallOutcome::kOverloaded);
  }
  for (int i = 0; i < 2; ++i) {
    pool.OnCallStart(0, 1);
    pool.OnCallEnd(0, 1, CallOutcome::kWorkerFailure);
  }
  pool.OnCallStart(0, 1);
  pool.OnCallEnd(0, 1, CallOutcome::kSuccess);
  EXPECT_TRUE(pool.IsAvailable(0));
  for (int i = 0; i < 3; ++i) {
    pool.OnCallStart(0, 1);
    pool.OnCallEnd(0, 1, CallOutcome::kWorkerFailure);
  }
  EXPECT_TRUE(pool.IsCircuitOpen(0));
  EXPECT_FALSE(pool.IsAvailable(0));
  EXPECT_TRUE(pool.IsHealthy(0));  // its health checks pass; the breaker alone takes it out
  EXPECT_TRUE(Eventually([&] { return pool.IsAvailable(0); }));
  // Half-open: one more failure takes it out again at once.
  pool.OnCallStart(0, 1);
  pool.OnCallEnd(0, 1, CallOutcome::kWorkerFailure);
  EXPECT_FALSE(pool.IsAvailable(0));
  EXPECT_EQ(pool.Load(0).router_calls, 0);
  pool.Stop();
}

TEST(WorkerPool, ADrainingWorkerGetsNoNewRequests) {
  testing::FakeWorker a(/*with_load_reports=*/true);
  WorkerPool pool({a.address()}, {.health_check_interval = absl::Milliseconds(50)});
  std::atomic<int> available{-1};
  pool.Start([&](size_t n) { available = static_cast<int>(n); });
  EXPECT_EQ(available.load(), 1);
  {
    std::lock_guard<std::mutex> lock(a.control().mu);
    a.control().load.set_draining(true);
  }
  EXPECT_TRUE(Eventually([&] { return available.load() == 0 && !pool.IsAvailable(0) && pool.IsHealthy(0); }));
  pool.Stop();
}

}  // namespace
}  // namespace octet::router
