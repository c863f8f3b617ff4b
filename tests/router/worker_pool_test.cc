#include "router/worker_pool.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octet/v1/worker.grpc.pb.h"
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

// Polls `predicate` for up to `timeout`.
template <typename Predicate>
bool Eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

using std::chrono::milliseconds;
using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
constexpr ServingStatus kServing = grpc::health::v1::HealthCheckResponse::SERVING;
constexpr ServingStatus kNotServing = grpc::health::v1::HealthCheckResponse::NOT_SERVING;
// Generous, so that a slow machine (or valgrind) still connects within Start's first round; a round ends as soon as
// every answer is in, so it costs nothing otherwise.
constexpr absl::Duration kFirstRoundTimeout = absl::Seconds(2);

// Waits while `flag` is set; false if the call was cancelled (or its deadline passed) meanwhile.
bool WaitWhile(const std::atomic<bool>& flag, grpc::ServerContext* context) {
  while (flag.load()) {
    if (context->IsCancelled()) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// A worker whose grpc.health.v1 and WorkerControl are played by hand, and which counts the calls it gets.
class ScriptedWorker {
 public:
  // Check answers `status`. Watch sends `status` and then every change until the call ends, or, with `watch_code`
  // set, fails at once with it (UNIMPLEMENTED: a health service without Watch). With `silent`, nothing is answered
  // (Watch sends nothing, Check and GetLoad wait until their deadline) until it is cleared: a host gone quiet.
  class Health final : public grpc::health::v1::Health::Service {
   public:
    explicit Health(ScriptedWorker* worker) : worker_(worker) {}
    grpc::Status Check(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest*,
                       grpc::health::v1::HealthCheckResponse* response) override {
      ++worker_->check_calls;
      if (!WaitWhile(worker_->silent, context)) return grpc::Status::CANCELLED;
      response->set_status(static_cast<ServingStatus>(worker_->status.load()));
      return grpc::Status::OK;
    }
    grpc::Status Watch(grpc::ServerContext* context, const grpc::health::v1::HealthCheckRequest*,
                       grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override {
      ++worker_->watch_calls;
      if (worker_->watch_code != 0) return grpc::Status(static_cast<grpc::StatusCode>(worker_->watch_code.load()), "");
      ++worker_->active_watches;
      int sent = -1;
      while (!context->IsCancelled()) {
        const int status = worker_->status.load();
        if (!worker_->silent.load() && status != sent) {
          grpc::health::v1::HealthCheckResponse response;
          response.set_status(static_cast<ServingStatus>(status));
          if (!writer->Write(response)) break;
          sent = status;
        }
        std::this_thread::sleep_for(milliseconds(2));
      }
      --worker_->active_watches;
      return grpc::Status::CANCELLED;
    }

   private:
    ScriptedWorker* worker_;
  };
  // GetLoad answers an empty report; with `load_silent` (or `silent`) it waits until its deadline instead.
  class Control final : public v1::WorkerControl::Service {
   public:
    explicit Control(ScriptedWorker* worker) : worker_(worker) {}
    grpc::Status GetLoad(grpc::ServerContext* context, const v1::GetLoadRequest*, v1::WorkerLoad*) override {
      if (!WaitWhile(worker_->load_silent, context) || !WaitWhile(worker_->silent, context)) {
        return grpc::Status::CANCELLED;
      }
      return grpc::Status::OK;
    }

   private:
    ScriptedWorker* worker_;
  };

  ScriptedWorker() {
    grpc::ServerBuilder builder;
    // Its own grpc.health.v1 service instead of gRPC's default one.
    builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&health_);
    builder.RegisterService(&control_);
    server_ = builder.BuildAndStart();
  }
  ~ScriptedWorker() { server_->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  std::atomic<int> status{kServing};
  std::atomic<int> watch_code{0};  // a grpc::StatusCode
  std::atomic<bool> silent{false};
  std::atomic<bool> load_silent{false};
  std::atomic<int> watch_calls{0};
  std::atomic<int> active_watches{0};  // Watch calls the worker is still serving
  std::atomic<int> check_calls{0};

 private:
  Health health_{this};
  Control control_{this};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

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

TEST(WorkerPool, AWatchSeesNotServingWithinMillisecondsNotAnInterval) {
  testing::FakeWorker worker;  // gRPC's default health service, as octet-worker has
  WorkerPool pool({worker.address()},
                  {.health_check_interval = absl::Seconds(10), .health_check_timeout = kFirstRoundTimeout});
  std::atomic<int> reported{-1};
  pool.Start([&](size_t n) { reported = static_cast<int>(n); });
  ASSERT_TRUE(pool.IsHealthy(0));
  ASSERT_EQ(reported.load(), 1);
  // The rounds are 10 s apart: only the Watch stream can bring the change this fast, listener included.
  worker.SetServing(false);  // a draining worker
  EXPECT_TRUE(Eventually([&] { return !pool.IsHealthy(0) && reported.load() == 0; }, milliseconds(1000)));
  worker.SetServing(true);
  EXPECT_TRUE(Eventually([&] { return pool.IsHealthy(0) && reported.load() == 1; }, milliseconds(1000)));
  pool.Stop();
}

TEST(WorkerPool, AWorkerThatDiesIsUnhealthyAtOnce) {
  auto worker = std::make_unique<testing::FakeWorker>();
  WorkerPool pool({worker->address()},
                  {.health_check_interval = absl::Seconds(10), .health_check_timeout = kFirstRoundTimeout});
  std::atomic<int> reported{-1};
  pool.Start([&](size_t n) { reported = static_cast<int>(n); });
  ASSERT_TRUE(pool.IsHealthy(0));
  worker.reset();  // its Watch stream ends with it
  EXPECT_TRUE(Eventually([&] { return !pool.IsHealthy(0) && reported.load() == 0; }, milliseconds(1000)));
  pool.Stop();
}

TEST(WorkerPool, ARestartedWorkerIsHealthyAgainWithinAnIntervalOfComingBack) {
  auto worker = std::make_unique<testing::FakeWorker>();
  const int port = worker->port();
  WorkerPool pool({worker->address()},
                  {.health_check_interval = absl::Milliseconds(500), .health_check_timeout = kFirstRoundTimeout});
  pool.Start(nullptr);
  ASSERT_TRUE(pool.IsHealthy(0));
  worker.reset();
  EXPECT_TRUE(Eventually([&] { return !pool.IsHealthy(0); }, milliseconds(400)));
  // Rounds keep trying new Watches meanwhile, each failing at once.
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_FALSE(pool.IsHealthy(0));
  worker = std::make_unique<testing::FakeWorker>(/*with_load_reports=*/false, port);
  ASSERT_EQ(worker->port(), port);
  // Back by the first round after the channel has reconnected (its backoff is at most 1 s, plus jitter).
  const auto restarted = std::chrono::steady_clock::now();
  EXPECT_TRUE(Eventually([&] { return pool.IsHealthy(0); }, milliseconds(500 + 1200 + 300)));
  EXPECT_LT(std::chrono::steady_clock::now() - restarted, milliseconds(2000));
  pool.Stop();
}

TEST(WorkerPool, StopCancelsLiveWatchesPromptlyAndNothingRunsAfterIt) {
  ScriptedWorker workers[3];
  WorkerPool pool({workers[0].address(), workers[1].address(), workers[2].address()},
                  {.health_check_interval = absl::Seconds(10), .health_check_timeout = kFirstRoundTimeout});
  std::atomic<int> reports{0};
  pool.Start([&](size_t) { ++reports; });
  ASSERT_EQ(pool.NumHealthy(), 3u);
  for (ScriptedWorker& w : workers) ASSERT_TRUE(Eventually([&] { return w.active_watches.load() == 1; }));
  const auto start = std::chrono::steady_clock::now();
  pool.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
  // Every stream was cancelled on the workers' side too...
  for (ScriptedWorker& w : workers) EXPECT_TRUE(Eventually([&] { return w.active_watches.load() == 0; }));
  // ...and nothing listens any more: a status change reaches neither the pool nor its listener.
  const int reports_after_stop = reports.load();
  for (ScriptedWorker& w : workers) w.status = kNotServing;
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(pool.NumHealthy(), 3u);
  EXPECT_EQ(reports.load(), reports_after_stop);
  for (ScriptedWorker& w : workers) EXPECT_EQ(w.watch_calls.load(), 1);
  const auto again = std::chrono::steady_clock::now();
  pool.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - again, milliseconds(100));
}

TEST(WorkerPool, AWorkerWithoutWatchIsPolledWithCheck) {
  ScriptedWorker worker;
  worker.watch_code = static_cast<int>(grpc::StatusCode::UNIMPLEMENTED);
  WorkerPool pool({worker.address()},
                  {.health_check_interval = absl::Milliseconds(50), .health_check_timeout = kFirstRoundTimeout});
  pool.Start(nullptr);
  // The first round found Watch missing and checked the worker at once.
  EXPECT_TRUE(pool.IsHealthy(0));
  EXPECT_EQ(worker.watch_calls.load(), 1);
  EXPECT_GE(worker.check_calls.load(), 1);
  worker.status = kNotServing;
  EXPECT_TRUE(Eventually([&] { return !pool.IsHealthy(0); }));
  worker.status = kServing;
  EXPECT_TRUE(Eventually([&] { return pool.IsHealthy(0); }));
  const int checks = worker.check_calls.load();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_GE(worker.check_calls.load(), checks + 2);  // polled every round...
  EXPECT_EQ(worker.watch_calls.load(), 1);           // ...and Watch not tried again
  pool.Stop();
}

TEST(WorkerPool, AWatchThatKeepsFailingIsRetriedOncePerInterval) {
  ScriptedWorker worker;
  worker.watch_code = static_cast<int>(grpc::StatusCode::UNAVAILABLE);
  WorkerPool pool({worker.address()}, {.health_check_interval = absl::Milliseconds(100)});
  pool.Start(nullptr);
  EXPECT_FALSE(pool.IsHealthy(0));
  const int first = worker.watch_calls.load();
  EXPECT_EQ(first, 1);
  std::this_thread::sleep_for(milliseconds(1000));
  // About one new Watch per round (10 rounds), never a tight loop.
  const int retries = worker.watch_calls.load() - first;
  EXPECT_GE(retries, 5);
  EXPECT_LE(retries, 11);
  EXPECT_FALSE(pool.IsHealthy(0));
  pool.Stop();
}

TEST(WorkerPool, AnUnlistedWorkersWatchIsCancelledAndAListedAgainOneIsWatchedAgain) {
  ScriptedWorker a;
  ScriptedWorker b;
  absl::Mutex mu;
  std::vector<std::string> resolved = {a.address(), b.address()};  // guarded by mu
  WorkerPoolOptions options{.health_check_interval = absl::Milliseconds(50),
                            .health_check_timeout = kFirstRoundTimeout,
                            .dns_target = "workers.test:1",
                            .dns_refresh_interval = absl::Milliseconds(50)};
  options.resolver = [&](std::string_view) -> absl::StatusOr<std::vector<std::string>> {
    absl::MutexLock lock(&mu);
    return resolved;
  };
  WorkerPool pool({}, options);
  pool.Start(nullptr);
  ASSERT_EQ(pool.NumHealthy(), 2u);
  ASSERT_TRUE(Eventually([&] { return a.active_watches.load() == 1 && b.active_watches.load() == 1; }));
  {
    absl::MutexLock lock(&mu);
    resolved = {b.address()};
  }
  EXPECT_TRUE(Eventually([&] { return !pool.IsListed(0) && a.active_watches.load() == 0; }));
  EXPECT_EQ(b.active_watches.load(), 1);
  {
    absl::MutexLock lock(&mu);
    resolved = {a.address(), b.address()};
  }
  EXPECT_TRUE(Eventually([&] { return pool.IsAvailable(0) && a.active_watches.load() == 1; }));
  EXPECT_EQ(a.watch_calls.load(), 2);
  EXPECT_EQ(b.watch_calls.load(), 1);
  pool.Stop();
}

TEST(WorkerPool, ASilentWorkerIsTakenOutAndBackWhenItAnswersAgain) {
  ScriptedWorker worker;
  WorkerPool pool({worker.address()},
                  {.health_check_interval = absl::Milliseconds(100), .health_check_timeout = absl::Milliseconds(200)});
  pool.Start(nullptr);
  ASSERT_TRUE(pool.IsHealthy(0));
  // Load reports unanswered but health answering: a Check confirms it, and it stays in (no flapping).
  worker.load_silent = true;
  std::this_thread::sleep_for(milliseconds(800));
  EXPECT_TRUE(pool.IsHealthy(0));
  EXPECT_GE(worker.check_calls.load(), 1);
  EXPECT_EQ(worker.watch_calls.load(), 1);
  // Nothing answered any more, its Watch stream open but quiet: taken out, and its Watch restarted.
  worker.silent = true;
  EXPECT_TRUE(Eventually([&] { return !pool.IsHealthy(0); }, milliseconds(2000)));
  EXPECT_TRUE(Eventually([&] { return worker.watch_calls.load() == 2; }, milliseconds(1000)));
  worker.silent = false;
  worker.load_silent = false;
  EXPECT_TRUE(Eventually([&] { return pool.IsHealthy(0); }, milliseconds(1000)));
  pool.Stop();
}

}  // namespace
}  // namespace octet::router
