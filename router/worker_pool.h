// The router's view of its workers: one channel per worker and a watcher thread that health-checks them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "octet/v1/generation.grpc.pb.h"

namespace octet::router {

// Parses the --workers flag: comma-separated HOST:PORT entries (IPv6 as [ADDR]:PORT), or gRPC target URIs with a
// scheme (dns:///svc:port, unix:/path). Errors name the entry and the rule.
absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(std::string_view flag);

struct WorkerPoolOptions {
  // How often each worker is health-checked, and how long one check may take before it counts as a failure.
  absl::Duration health_check_interval = absl::Milliseconds(500);
  absl::Duration health_check_timeout = absl::Milliseconds(300);
};

class WorkerPool {
 public:
  // Called on the watcher thread whenever the number of healthy workers changes (and once from Start()).
  using HealthListener = std::function<void(size_t num_healthy)>;

  WorkerPool(std::vector<std::string> addresses, WorkerPoolOptions options);
  ~WorkerPool();  // stops the watcher
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs one round of health checks (bounded by the check timeout), reports it to the listener, then starts the
  // watcher thread. Workers count as unhealthy until a check says SERVING.
  void Start(HealthListener listener);
  // Stops and joins the watcher thread. Channels and stubs stay usable until the pool is destroyed.
  void Stop();

  size_t size() const { return workers_.size(); }
  const std::string& address(size_t worker) const { return workers_[worker]->address; }
  v1::Generation::Stub* stub(size_t worker) const { return workers_[worker]->stub.get(); }
  bool IsHealthy(size_t worker) const { return workers_[worker]->healthy.load(std::memory_order_acquire); }
  size_t NumHealthy() const;
  // Indices of the healthy workers, ascending.
  std::vector<size_t> HealthyWorkers() const;

  // A call to `worker` failed with UNAVAILABLE. When its channel is not connected (the worker died or cannot be
  // reached) the worker is marked unhealthy at once, ahead of the next check, which marks it healthy again when it
  // passes. A connected worker that answered UNAVAILABLE itself is left to the health checks (no flapping).
  void ReportUnavailable(size_t worker, std::string_view reason);

 private:
  struct Worker {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Generation::Stub> stub;
    std::unique_ptr<grpc::health::v1::Health::Stub> health;
    std::atomic<bool> healthy{false};
  };

  // One round: a Check on every worker in parallel, then waits for all of them. Logs transitions (every
  // worker's state when `log_all`).
  void CheckAll(bool log_all);
  void SetHealthy(size_t worker, bool healthy, std::string_view reason, bool log_unchanged);
  void WatchLoop();

  const WorkerPoolOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  HealthListener listener_;
  size_t last_reported_healthy_ = 0;  // touched by Start() and then only by the watcher thread

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace octet::router
