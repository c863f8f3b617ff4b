#include "router/worker_pool.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/log.h"

namespace octet::router {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// A target with a gRPC URI scheme is passed to gRPC as is.
bool HasScheme(absl::string_view target) {
  return absl::StrContains(target, "://") || absl::StartsWith(target, "unix:") ||
         absl::StartsWith(target, "unix-abstract:") || absl::StartsWith(target, "ipv4:") ||
         absl::StartsWith(target, "ipv6:");
}

absl::Status CheckHostPort(absl::string_view entry) {
  const size_t colon = entry.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat("--workers: '", entry, "' must be HOST:PORT"));
  }
  const absl::string_view host = entry.substr(0, colon);
  const absl::string_view port = entry.substr(colon + 1);
  if (host.front() == '[' && host.back() != ']') {
    return absl::InvalidArgumentError(absl::StrCat("--workers: '", entry, "' has an unclosed [ in its IPv6 host"));
  }
  if (host.front() != '[' && absl::StrContains(host, ':')) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workers: '", entry, "' must write an IPv6 host in brackets: [ADDR]:PORT"));
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--workers: '", entry, "' must end in a port number in [1, 65535]"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> MakeWorkerChannel(const std::string& address, const WorkerTlsOptions& tls) {
  grpc::ChannelArguments args;
  // gRPC's default reconnect backoff grows to 2 minutes; a restarted worker should be back in rotation within
  // about a second, and every target here is a worker we are told to use.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  if (!tls.enabled) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  // Workers found through DNS are addressed by IP: server_name lets one certificate name cover all of them.
  if (!tls.server_name.empty()) args.SetSslTargetNameOverride(tls.server_name);
  grpc::SslCredentialsOptions credentials;
  credentials.pem_root_certs = tls.root_certs;
  credentials.pem_cert_chain = tls.cert_chain;
  credentials.pem_private_key = tls.private_key;
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(credentials), args);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string StatusText(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())), ": ",
                      status.error_message());
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ResolveWorkerAddresses(std::string_view name_port) {
  const size_t colon = name_port.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == name_port.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--workers-dns: '", std::string(name_port), "' must be NAME:PORT"));
  }
  const std::string host(name_port.substr(0, colon));
  const std::string port(name_port.substr(colon + 1));
  int port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (ec != std::errc() || end != port.data() + port.size() || port_number < 1 || port_number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--workers-dns: '", std::string(name_port), "' must end in a port number in [1, 65535]"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &results) != 0) return std::vector<std::string>{};
  std::vector<std::string> addresses;
  for (const addrinfo* a = results; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof(text));
      addresses.push_back(absl::StrCat(text, ":", port));
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, text, sizeof(text));
      addresses.push_back(absl::StrCat("[", text, "]:", port));
    }
  }
  freeaddrinfo(results);
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  return addresses;
}

absl::StatusOr<std::vector<std::string>> ParseWorkerAddresses(std::string_view flag_value) {
  const absl::string_view flag(flag_value.data(), flag_value.size());
  if (absl::StripAsciiWhitespace(flag).empty()) {
    return absl::InvalidArgumentError("--workers must list at least one HOST:PORT");
  }
  std::vector<std::string> addresses;
  absl::flat_hash_set<std::string> seen;
  int index = 0;
  for (absl::string_view entry : absl::StrSplit(flag, ',')) {
    ++index;
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--workers: entry ", index, " is empty"));
    }
    if (!HasScheme(entry)) {
      if (absl::Status s = CheckHostPort(entry); !s.ok()) return s;
    }
    if (!seen.insert(std::string(entry)).second) {
      return absl::InvalidArgumentError(absl::StrCat("--workers: '", entry, "' is listed twice"));
    }
    addresses.emplace_back(entry);
  }
  return addresses;
}

// The unary calls of one round (Checks or load reports): their callbacks record a result each, the watcher thread
// waits for all of them and reads the results.
class WorkerPool::CallGroup {
 public:
  explicit CallGroup(size_t n) : pending_(n), failure_(n), done_(n, false) {}
  void Finish(size_t k, std::string failure) {
    absl::MutexLock lock(&mu_);
    failure_[k] = std::move(failure);
    done_[k] = true;
    --pending_;
  }
  // The calls' deadline bounds them; the extra second only guards against a lost callback.
  void Wait(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    mu_.AwaitWithDeadline(absl::Condition(&all_done), deadline + absl::Seconds(1));
  }
  // After Wait: call k's failure ("" when it succeeded), or nullopt when it has not completed.
  std::optional<std::string> Result(size_t k) {
    absl::MutexLock lock(&mu_);
    if (!done_[k]) return std::nullopt;
    return failure_[k];
  }

 private:
  absl::Mutex mu_;
  size_t pending_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failure_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> done_ ABSL_GUARDED_BY(mu_);
};

WorkerPool::WorkerPool(std::vector<std::string> addresses, WorkerPoolOptions options) : options_(std::move(options)) {
  slots_.resize(kMaxWorkers);
  SetListed(addresses);
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::SetListed(const std::vector<std::string>& addresses) {
  absl::MutexLock lock(&membership_mu_);
  const size_t n = num_slots_.load(std::memory_order_acquire);
  std::vector<bool> keep(n, false);
  for (const std::string& address : addresses) {
    const size_t known = num_slots_.load(std::memory_order_relaxed);
    size_t slot = 0;
    while (slot < known && slots_[slot]->address != address) ++slot;
    if (slot == known) {
      const size_t created = num_slots_.load(std::memory_order_relaxed);
      if (created == kMaxWorkers) {
        OCTET_LOG(ERROR, "router") << "more than " << kMaxWorkers << " workers; ignoring " << address;
        continue;
      }
      auto worker = std::make_unique<Worker>();
      worker->address = address;
      worker->channel = MakeWorkerChannel(address, options_.tls);
      worker->stub = v1::Generation::NewStub(worker->channel);
      worker->health = grpc::health::v1::Health::NewStub(worker->channel);
      worker->control = v1::WorkerControl::NewStub(worker->channel);
      worker->listed.store(true, std::memory_order_release);
      slots_[created] = std::move(worker);
      num_slots_.store(created + 1, std::memory_order_release);
      OCTET_LOG(INFO, "router") << "worker " << address << " added";
      continue;
    }
    if (slot < n) keep[slot] = true;
    if (!slots_[slot]->listed.exchange(true)) OCTET_LOG(INFO, "router") << "worker " << address << " listed again";
  }
  for (size_t slot = 0; slot < n; ++slot) {
    if (!keep[slot] && slots_[slot]->listed.exchange(false)) {
      OCTET_LOG(INFO, "router") << "worker " << slots_[slot]->address << " removed (no longer resolved)";
      DropWatch(slot, /*mark_unhealthy=*/true, "no longer resolved");
    }
  }
}

void WorkerPool::Resolve() {
  if (options_.dns_target.empty()) return;
  absl::StatusOr<std::vector<std::string>> addresses =
      options_.resolver ? options_.resolver(options_.dns_target) : ResolveWorkerAddresses(options_.dns_target);
  if (!addresses.ok()) {
    OCTET_LOG(WARNING, "router") << "cannot resolve " << options_.dns_target << ": " << addresses.status();
    return;
  }
  SetListed(*addresses);
}

void WorkerPool::Start(HealthListener listener) {
  listener_ = std::move(listener);
  Resolve();
  RunRound(/*log_all=*/true);
  log_every_result_.store(false, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&report_mu_);
    reporting_ = true;
    last_reported_available_ = NumHealthy();
    if (listener_) listener_(last_reported_available_);
  }
  watcher_ = std::thread([this] { WatchLoop(); });
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
  // Only the watcher thread and Start() start calls; with it gone, cancel the Watches and wait for every call.
  for (size_t i = 0; i < size(); ++i) DropWatch(i, /*mark_unhealthy=*/false, "");
  while (!own_calls_.WaitForZero(absl::Seconds(5))) {
    OCTET_LOG(WARNING, "router") << own_calls_.count() << " health calls still running 5s after they were cancelled";
  }
}

size_t WorkerPool::NumListed() const {
  size_t n = 0;
  for (size_t i = 0; i < size(); ++i) n += IsListed(i) ? 1 : 0;
  return n;
}

bool WorkerPool::IsCircuitOpen(size_t worker) const {
  return slots_[worker]->circuit_open_until_ns.load(std::memory_order_acquire) > NowNs();
}

bool WorkerPool::IsAvailable(size_t worker) const {
  const Worker& w = *slots_[worker];
  return w.listed.load(std::memory_order_acquire) && w.healthy.load(std::memory_order_acquire) &&
         !w.draining.load(std::memory_order_acquire) && !IsCircuitOpen(worker);
}

size_t WorkerPool::NumHealthy() const {
  size_t n = 0;
  for (size_t i = 0; i < size(); ++i) n += IsAvailable(i) ? 1 : 0;
  return n;
}

std::vector<size_t> WorkerPool::HealthyWorkers() const {
  std::vector<size_t> available;
  for (size_t i = 0; i < size(); ++i) {
    if (IsAvailable(i)) available.push_back(i);
  }
  return available;
}

WorkerLoadView WorkerPool::Load(size_t worker) const {
  const Worker& w = *slots_[worker];
  absl::MutexLock lock(&w.mu);
  return w.load;
}

void WorkerPool::OnCallStart(size_t worker, int64_t estimated_tokens) {
  Worker& w = *slots_[worker];
  absl::MutexLock lock(&w.mu);
  ++w.load.router_calls;
  w.load.router_tokens += estimated_tokens;
  w.load.router_tokens_since += estimated_tokens;
}

void WorkerPool::OnCallEnd(size_t worker, int64_t estimated_tokens, CallOutcome outcome) {
  Worker& w = *slots_[worker];
  {
    absl::MutexLock lock(&w.mu);
    --w.load.router_calls;
    w.load.router_tokens -= estimated_tokens;
    w.load.router_tokens_since -= estimated_tokens;
  }
  switch (outcome) {
    case CallOutcome::kSuccess:
      w.consecutive_failures.store(0, std::memory_order_relaxed);
      break;
    case CallOutcome::kClientError:
    case CallOutcome::kOverloaded:
      break;
    case CallOutcome::kWorkerFailure: {
      const int failures = w.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
      if (options_.circuit_breaker_failures > 0 && failures >= options_.circuit_breaker_failures) {
        const int64_t until = NowNs() + absl::ToInt64Nanoseconds(options_.circuit_breaker_cooldown);
        if (w.circuit_open_until_ns.exchange(until) < NowNs()) {
          OCTET_LOG(WARNING, "router") << "worker " << w.address << " taken out for "
                                       << absl::FormatDuration(options_.circuit_breaker_cooldown) << " after "
                                       << failures << " failures in a row";
        }
      }
      break;
    }
  }
}

void WorkerPool::ReportUnavailable(size_t worker, std::string_view reason) {
  if (slots_[worker]->channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) return;
  // Its Watch may not have noticed yet (or may be on a connection that is gone): a new one decides when it is back.
  DropWatch(worker, /*mark_unhealthy=*/true, reason);
  ReportIfChanged();
}

void WorkerPool::SetHealthy(size_t worker, bool healthy, std::string_view reason, bool log_unchanged) {
  Worker& w = *slots_[worker];
  if (w.healthy.exchange(healthy, std::memory_order_acq_rel) == healthy && !log_unchanged) return;
  if (healthy) {
    OCTET_LOG(INFO, "router") << "worker " << w.address << " is healthy";
  } else {
    OCTET_LOG(WARNING, "router") << "worker " << w.address << " is unhealthy: " << reason;
  }
}

std::shared_ptr<HealthWatch> WorkerPool::StartWatch(size_t worker) {
  Worker& w = *slots_[worker];
  if (w.check_fallback.load(std::memory_order_acquire)) return nullptr;
  std::shared_ptr<HealthWatch> watch;
  {
    absl::MutexLock lock(&w.watch_mu);
    if (w.watch != nullptr) return nullptr;
    watch = HealthWatch::Create(
        {.on_status = [this, worker](const HealthWatch* stream,
                                     HealthWatch::ServingStatus status) { OnWatchStatus(worker, stream, status); },
         .on_end = [this, worker](const HealthWatch* stream,
                                  const grpc::Status& status) { OnWatchEnd(worker, stream, status); }},
        &own_calls_);
    w.watch = watch;
  }
  // Started outside watch_mu, which its callbacks take. Were it dropped in between, it is already cancelled and
  // ends at once.
  watch->Start(w.health.get());
  return watch;
}

void WorkerPool::DropWatch(size_t worker, bool mark_unhealthy, std::string_view reason) {
  Worker& w = *slots_[worker];
  std::shared_ptr<HealthWatch> watch;
  {
    absl::MutexLock lock(&w.watch_mu);
    watch = std::move(w.watch);
    if (mark_unhealthy) SetHealthy(worker, false, reason, /*log_unchanged=*/false);
  }
  // Outside watch_mu: cancelling may run the stream's last callbacks, which take it (and find the stream dropped).
  if (watch != nullptr) watch->Cancel();
}

void WorkerPool::OnWatchStatus(size_t worker, const HealthWatch* watch, HealthWatch::ServingStatus status) {
  Worker& w = *slots_[worker];
  {
    absl::MutexLock lock(&w.watch_mu);
    if (w.watch.get() != watch) return;  // a dropped stream's last words
    const bool serving = status == HealthCheckResponse::SERVING;
    SetHealthy(worker, serving,
               serving ? "" : absl::StrCat("health status ", HealthCheckResponse::ServingStatus_Name(status)),
               log_every_result_.load(std::memory_order_relaxed));
  }
  ReportIfChanged();
}

void WorkerPool::OnWatchEnd(size_t worker, const HealthWatch* watch, const grpc::Status& status) {
  Worker& w = *slots_[worker];
  {
    absl::MutexLock lock(&w.watch_mu);
    if (w.watch.get() != watch) return;
    w.watch = nullptr;  // the next round starts a new one
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      w.check_fallback.store(true, std::memory_order_release);
      OCTET_LOG(INFO, "router") << "worker " << w.address << " has no health Watch (" << StatusText(status)
                                << "); checking it every round instead";
    }
    SetHealthy(
        worker, false, absl::StrCat("health watch ended: ", StatusText(status)),
        log_every_result_.load(std::memory_order_relaxed) && status.error_code() != grpc::StatusCode::UNIMPLEMENTED);
  }
  ReportIfChanged();
}

std::vector<std::string> WorkerPool::CheckWorkers(const std::vector<size_t>& workers, absl::Time deadline) {
  if (workers.empty()) return {};
  struct Call {
    grpc::ClientContext context;
    HealthCheckRequest request;
    HealthCheckResponse response;
  };
  auto group = std::make_shared<CallGroup>(workers.size());
  for (size_t k = 0; k < workers.size(); ++k) {
    auto call = std::make_shared<Call>();
    call->context.set_deadline(absl::ToChronoTime(deadline));
    own_calls_.Begin();
    slots_[workers[k]]->health->async()->Check(
        &call->context, &call->request, &call->response, [this, group, call, k](grpc::Status status) {
          std::string failure;
          if (!status.ok()) {
            failure = absl::StrCat("health check failed: ", StatusText(status));
          } else if (call->response.status() != HealthCheckResponse::SERVING) {
            failure = absl::StrCat("health status ", HealthCheckResponse::ServingStatus_Name(call->response.status()));
          }
          group->Finish(k, std::move(failure));
          own_calls_.End();  // last: Stop() may return from here on
        });
  }
  group->Wait(deadline);
  std::vector<std::string> failures(workers.size());
  for (size_t k = 0; k < workers.size(); ++k) {
    failures[k] = group->Result(k).value_or("health check did not complete");
  }
  return failures;
}

void WorkerPool::PollWorkers(const std::vector<size_t>& workers, absl::Time deadline, bool log_all) {
  const std::vector<std::string> failures = CheckWorkers(workers, deadline);
  for (size_t k = 0; k < workers.size(); ++k) SetHealthy(workers[k], failures[k].empty(), failures[k], log_all);
}

std::shared_ptr<WorkerPool::CallGroup> WorkerPool::RequestLoads(const std::vector<size_t>& workers,
                                                                absl::Time deadline) {
  struct LoadCall {
    grpc::ClientContext context;
    v1::GetLoadRequest request;
    v1::WorkerLoad response;
  };
  auto loads = std::make_shared<CallGroup>(workers.size());
  for (size_t k = 0; k < workers.size(); ++k) {
    Worker* w = slots_[workers[k]].get();
    auto load = std::make_shared<LoadCall>();
    load->context.set_deadline(absl::ToChronoTime(deadline));
    own_calls_.Begin();
    w->control->async()->GetLoad(
        &load->context, &load->request, &load->response, [this, loads, load, w, k](grpc::Status status) {
          if (status.ok()) {
            const v1::WorkerLoad& r = load->response;
            w->draining.store(r.draining(), std::memory_order_release);
            absl::MutexLock lock(&w->mu);
            w->load.reported = true;
            w->load.draining = r.draining();
            w->load.tokens_in_flight = r.num_tokens_in_flight();
            w->load.kv_capacity_tokens = r.kv_capacity_tokens();
            w->load.kv_cache_usage = r.kv_cache_usage();
            w->load.num_waiting = r.num_waiting();
            w->load.router_tokens_since = 0;  // the report counts what was sent before it
          }
          loads->Finish(k, status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? StatusText(status) : "");
          own_calls_.End();  // last: Stop() may return from here on
        });
  }
  return loads;
}

void WorkerPool::RunRound(bool log_all) {
  std::vector<size_t> workers;
  for (size_t i = 0; i < size(); ++i) {
    if (IsListed(i)) workers.push_back(i);
  }
  const absl::Time deadline = absl::Now() + options_.health_check_timeout;
  const std::shared_ptr<CallGroup> loads = RequestLoads(workers, deadline);
  // Health: a Watch where none runs (the previous one ended, or the worker is new or listed again), a Check where
  // Watch is unimplemented.
  std::vector<size_t> polled;
  std::vector<std::shared_ptr<HealthWatch>> started(workers.size());  // by k: the Watch started in this round
  for (size_t k = 0; k < workers.size(); ++k) {
    if (slots_[workers[k]]->check_fallback.load(std::memory_order_acquire)) {
      polled.push_back(workers[k]);
    } else {
      started[k] = StartWatch(workers[k]);
    }
  }
  PollWorkers(polled, deadline, log_all);
  std::vector<size_t> fell_back;
  for (size_t k = 0; k < workers.size(); ++k) {
    const size_t worker = workers[k];
    if (started[k] == nullptr) continue;
    if (!started[k]->AwaitFirstResult(deadline)) {
      if (log_all) {
        OCTET_LOG(WARNING, "router") << "worker " << slots_[worker]->address
                                     << " is unhealthy: no health status within "
                                     << absl::FormatDuration(options_.health_check_timeout);
      }
    } else if (slots_[worker]->check_fallback.load(std::memory_order_acquire)) {
      fell_back.push_back(worker);
    }
  }
  // Found without Watch just now: checked at once rather than left out until the next round.
  PollWorkers(fell_back, absl::Now() + options_.health_check_timeout, log_all);
  loads->Wait(deadline);
  // A healthy worker whose Watch ran before this round but that left its load report unanswered may sit behind a
  // connection that silently went away, where its Watch would never say so: a Check decides. If that goes
  // unanswered too (or fails), the worker is taken out and its Watch restarted.
  std::vector<size_t> suspects;
  for (size_t k = 0; k < workers.size(); ++k) {
    const size_t worker = workers[k];
    const std::optional<std::string> failure = loads->Result(k);
    if ((failure.has_value() && failure->empty()) || started[k] != nullptr ||
        slots_[worker]->check_fallback.load(std::memory_order_acquire) || !IsHealthy(worker)) {
      continue;
    }
    suspects.push_back(worker);
  }
  const std::vector<std::string> failures = CheckWorkers(suspects, absl::Now() + options_.health_check_timeout);
  for (size_t k = 0; k < suspects.size(); ++k) {
    if (failures[k].empty()) continue;
    DropWatch(suspects[k], /*mark_unhealthy=*/true,
              absl::StrCat("no answer to its load report within ", absl::FormatDuration(options_.health_check_timeout),
                           ", and ", failures[k]));
  }
}

void WorkerPool::ReportIfChanged() {
  absl::MutexLock lock(&report_mu_);
  if (!reporting_) return;  // Start() reports its first round itself
  const size_t available = NumHealthy();
  if (available == last_reported_available_) return;
  last_reported_available_ = available;
  OCTET_LOG(INFO, "router") << available << " of " << NumListed() << " workers available";
  if (listener_) listener_(available);
}

void WorkerPool::WatchLoop() {
  auto next_resolve = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.dns_refresh_interval);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.health_check_interval)) return;
    }
    if (std::chrono::steady_clock::now() >= next_resolve) {
      Resolve();
      next_resolve = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.dns_refresh_interval);
    }
    RunRound(/*log_all=*/false);
    ReportIfChanged();
  }
}

}  // namespace octet::router
