// The router's view of its workers: who they are (a static list, or the addresses a DNS name resolves to, re-resolved
// periodically), whether they are healthy (a grpc.health.v1 Watch stream per worker, Check polling for workers
// without Watch), how loaded they are (their WorkerControl load reports plus the calls this router sent since), and
// whether a circuit breaker has taken them out after failures.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
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
#include "octet/v1/worker.grpc.pb.h"
#include "router/health_watch.h"
#include "router/inflight_calls.h"

namespace octet::router {

// Parses the --workers flag: comma-separated HOST:PORT entries (IPv6 as [ADDR]:PORT), or gRPC target URIs with a
// scheme (dns:///svc:port, unix:/path). Errors name the entry and the rule.
absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(std::string_view flag);

// Resolves "NAME:PORT" (e.g. a Kubernetes headless Service) into one "IP:PORT" per address, sorted ("[IPv6]:PORT"
// for IPv6). An unresolvable name is an empty list, not an error: the workers may not exist yet.
absl::StatusOr<std::vector<std::string>> ResolveWorkerAddresses(std::string_view name_port);

// TLS on the router's channels to its workers (--worker-tls-*): PEM contents, read at start-up.
struct WorkerTlsOptions {
  bool enabled = false;  // false: plaintext
  // The CA the workers' certificates are checked against (empty: the system's roots).
  std::string root_certs;
  // The router's client certificate and its key, for workers that require one (empty: none).
  std::string cert_chain;
  std::string private_key;
  // The name every worker's certificate must carry (empty: the worker's address), so that one certificate name
  // covers workers found by DNS, which are addressed by IP.
  std::string server_name;
};

struct WorkerPoolOptions {
  // A round every health_check_interval: every listed worker is asked for its load, a worker whose Watch stream
  // ended gets a new one (so the interval is the backoff between Watch attempts), and a worker without Watch is
  // sent a Check. health_check_timeout bounds each call of a round (and a new Watch's first message in Start()).
  absl::Duration health_check_interval = absl::Milliseconds(250);
  absl::Duration health_check_timeout = absl::Milliseconds(300);
  // --workers-dns: NAME:PORT re-resolved every dns_refresh_interval (empty = the static list only).
  std::string dns_target;
  absl::Duration dns_refresh_interval = absl::Seconds(5);
  // For tests: replaces ResolveWorkerAddresses.
  std::function<absl::StatusOr<std::vector<std::string>>(std::string_view)> resolver;
  // Circuit breaker: this many consecutive worker failures take a worker out for `circuit_breaker_cooldown`; after
  // it the worker gets traffic again, and one more failure takes it out again.
  int circuit_breaker_failures = 3;
  absl::Duration circuit_breaker_cooldown = absl::Seconds(5);
  WorkerTlsOptions tls;
};

// How a call to a worker ended, for the circuit breaker and the load estimate.
enum class CallOutcome {
  kSuccess,        // OK
  kClientError,    // the request or the client's doing (bad request, client deadline, cancel): not the worker's fault
  kOverloaded,     // RESOURCE_EXHAUSTED: the worker is full; try another, but it is not broken
  kWorkerFailure,  // UNAVAILABLE, INTERNAL, UNKNOWN, ...: counts towards the circuit breaker
};

// A worker's latest load report, and the router's own calls to it.
struct WorkerLoadView {
  bool reported = false;  // a report has arrived (workers without WorkerControl never report)
  bool draining = false;  // it takes no new requests
  int64_t tokens_in_flight = 0;
  int64_t kv_capacity_tokens = 0;
  float kv_cache_usage = 0.0f;
  int32_t num_waiting = 0;
  int32_t router_calls = 0;         // this router's calls to it that are running now
  int64_t router_tokens = 0;        // their estimated tokens
  int64_t router_tokens_since = 0;  // estimated tokens of calls sent (less those ended) since the report
};

class WorkerPool {
 public:
  static constexpr size_t kMaxWorkers = 4096;  // slots are never reused for another address, so indices stay valid
  // Called whenever the number of available workers changes: once from Start(), then from the watcher thread or
  // the gRPC thread that saw the change (a Watch message), one call at a time. Must not call back into the pool's
  // reporting (it may read the pool).
  using HealthListener = std::function<void(size_t num_available)>;

  WorkerPool(std::vector<std::string> addresses, WorkerPoolOptions options);
  ~WorkerPool();  // Stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Resolves the DNS target (if any), starts a Watch on every listed worker and asks each for its load, waits for
  // the first Watch messages and the load reports (bounded by the check timeout), reports the result to the
  // listener, then starts the watcher thread. Workers count as unhealthy until their health says SERVING.
  void Start(HealthListener listener);
  // Stops and joins the watcher thread, cancels every Watch and waits until no call of the pool's own (Watch,
  // Check, GetLoad) is left, so no callback runs after it returns. Channels and stubs stay usable until the pool
  // is destroyed. Idempotent.
  void Stop();

  // Workers ever known (indices 0..size()-1 stay valid); NumListed: those in the current list or resolution.
  size_t size() const { return num_slots_.load(std::memory_order_acquire); }
  size_t NumListed() const;
  const std::string& address(size_t worker) const { return slots_[worker]->address; }
  v1::Generation::Stub* stub(size_t worker) const { return slots_[worker]->stub.get(); }
  bool IsListed(size_t worker) const { return slots_[worker]->listed.load(std::memory_order_acquire); }
  bool IsHealthy(size_t worker) const { return slots_[worker]->healthy.load(std::memory_order_acquire); }
  bool IsCircuitOpen(size_t worker) const;
  // Listed, healthy, not draining, circuit closed: may be given new requests.
  bool IsAvailable(size_t worker) const;
  size_t NumHealthy() const;  // available workers
  // Indices of the available workers, ascending.
  std::vector<size_t> HealthyWorkers() const;
  WorkerLoadView Load(size_t worker) const;

  // Accounting of each call to a worker: its estimated tokens while it runs, and how it ended.
  void OnCallStart(size_t worker, int64_t estimated_tokens);
  void OnCallEnd(size_t worker, int64_t estimated_tokens, CallOutcome outcome);

  // A call to `worker` failed with UNAVAILABLE. When its channel is not connected (the worker died or cannot be
  // reached) the worker is marked unhealthy at once and its Watch is restarted on the next round, whose first
  // message marks it healthy again. A connected worker that answered UNAVAILABLE itself is left to its health
  // (no flapping).
  void ReportUnavailable(size_t worker, std::string_view reason);

 private:
  struct Worker {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::Generation::Stub> stub;
    std::unique_ptr<grpc::health::v1::Health::Stub> health;
    std::unique_ptr<v1::WorkerControl::Stub> control;
    std::atomic<bool> listed{false};
    std::atomic<bool> healthy{false};
    std::atomic<bool> draining{false};
    std::atomic<int> consecutive_failures{0};
    std::atomic<int64_t> circuit_open_until_ns{0};  // steady clock; 0 = closed
    std::atomic<bool> check_fallback{false};        // its Watch was UNIMPLEMENTED: polled with Check from then on
    mutable absl::Mutex mu;
    WorkerLoadView load ABSL_GUARDED_BY(mu);
    // The running Watch (null when none). Only the current one may change `healthy`; taking it out of the slot,
    // under watch_mu, is what makes the pool stop listening to it.
    absl::Mutex watch_mu;
    std::shared_ptr<HealthWatch> watch ABSL_GUARDED_BY(watch_mu);
  };

  class CallGroup;

  // Makes `addresses` the listed workers: new ones get a slot, missing ones are unlisted (their running calls go on).
  void SetListed(const std::vector<std::string>& addresses);
  void Resolve();
  // One round on every listed worker: GetLoad, a new Watch where none runs (Check where Watch is unimplemented),
  // then waits for them, bounded by the check timeout. Logs transitions (every worker's state when `log_all`).
  void RunRound(bool log_all);
  // Sends GetLoad to each of `workers`, applying each report on arrival (a worker without WorkerControl just never
  // reports); the group's failures note the calls that got no answer (DEADLINE_EXCEEDED).
  std::shared_ptr<CallGroup> RequestLoads(const std::vector<size_t>& workers, absl::Time deadline);
  // Sends a Check to each of `workers`; returns once all came back or `deadline` passed, with each one's failure
  // ("" when it said SERVING).
  std::vector<std::string> CheckWorkers(const std::vector<size_t>& workers, absl::Time deadline);
  // CheckWorkers, then marks each worker healthy or not by its answer.
  void PollWorkers(const std::vector<size_t>& workers, absl::Time deadline, bool log_all);
  // Starts a Watch on `worker` unless one is running or it uses Check; returns it (null when none was started).
  std::shared_ptr<HealthWatch> StartWatch(size_t worker);
  // Takes the Watch out of the slot and cancels it (the next round starts a new one); with `mark_unhealthy`, marks
  // the worker unhealthy in the same step, so that the old stream cannot mark it healthy again.
  void DropWatch(size_t worker, bool mark_unhealthy, std::string_view reason);
  void OnWatchStatus(size_t worker, const HealthWatch* watch, HealthWatch::ServingStatus status);
  void OnWatchEnd(size_t worker, const HealthWatch* watch, const grpc::Status& status);
  void SetHealthy(size_t worker, bool healthy, std::string_view reason, bool log_unchanged);
  // Tells the listener if the number of available workers changed (from any thread; not before Start reported).
  void ReportIfChanged();
  void WatchLoop();

  const WorkerPoolOptions options_;
  std::vector<std::unique_ptr<Worker>> slots_;  // kMaxWorkers entries, filled in order, never moved
  std::atomic<size_t> num_slots_{0};
  absl::Mutex membership_mu_;  // serializes SetListed
  HealthListener listener_;    // set by Start() before any call of the pool's own
  // Start's first round logs every result; later only transitions.
  std::atomic<bool> log_every_result_{true};
  // The pool's calls still running (Watch reactors not yet destroyed, Check and GetLoad callbacks not yet run).
  InflightCalls own_calls_;

  absl::Mutex report_mu_;
  bool reporting_ ABSL_GUARDED_BY(report_mu_) = false;  // from the end of Start's first round
  size_t last_reported_available_ ABSL_GUARDED_BY(report_mu_) = 0;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace octet::router
