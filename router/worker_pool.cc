#include "router/worker_pool.h"

#include <grpcpp/grpcpp.h>

#include <charconv>
#include <chrono>
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

std::shared_ptr<grpc::Channel> MakeWorkerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  // gRPC's default reconnect backoff grows to 2 minutes; a restarted worker should be back in rotation within
  // about a second, and every target here is a worker we are told to use.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

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

WorkerPool::WorkerPool(std::vector<std::string> addresses, WorkerPoolOptions options) : options_(options) {
  workers_.reserve(addresses.size());
  for (std::string& address : addresses) {
    auto worker = std::make_unique<Worker>();
    worker->address = std::move(address);
    worker->channel = MakeWorkerChannel(worker->address);
    worker->stub = v1::Generation::NewStub(worker->channel);
    worker->health = grpc::health::v1::Health::NewStub(worker->channel);
    workers_.push_back(std::move(worker));
  }
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Start(HealthListener listener) {
  listener_ = std::move(listener);
  CheckAll(/*log_all=*/true);
  last_reported_healthy_ = NumHealthy();
  if (listener_) listener_(last_reported_healthy_);
  watcher_ = std::thread([this] { WatchLoop(); });
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

size_t WorkerPool::NumHealthy() const {
  size_t n = 0;
  for (const auto& worker : workers_) n += worker->healthy.load(std::memory_order_acquire) ? 1 : 0;
  return n;
}

std::vector<size_t> WorkerPool::HealthyWorkers() const {
  std::vector<size_t> healthy;
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (IsHealthy(i)) healthy.push_back(i);
  }
  return healthy;
}

void WorkerPool::ReportUnavailable(size_t worker, std::string_view reason) {
  if (workers_[worker]->channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) return;
  SetHealthy(worker, false, reason, /*log_unchanged=*/false);
}

void WorkerPool::SetHealthy(size_t worker, bool healthy, std::string_view reason, bool log_unchanged) {
  Worker& w = *workers_[worker];
  if (w.healthy.exchange(healthy, std::memory_order_acq_rel) == healthy && !log_unchanged) return;
  if (healthy) {
    OCTET_LOG(INFO, "router") << "worker " << w.address << " is healthy";
  } else {
    OCTET_LOG(WARNING, "router") << "worker " << w.address << " is unhealthy: " << reason;
  }
}

void WorkerPool::CheckAll(bool log_all) {
  // One Check per worker, all in flight at once; the callbacks only record results, this thread applies them.
  struct Round {
    absl::Mutex mu;
    size_t pending ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::string> failure ABSL_GUARDED_BY(mu);  // empty string: SERVING
    std::vector<bool> done ABSL_GUARDED_BY(mu);
  };
  struct Call {
    grpc::ClientContext context;
    HealthCheckRequest request;
    HealthCheckResponse response;
  };
  auto round = std::make_shared<Round>();
  {
    absl::MutexLock lock(&round->mu);
    round->pending = workers_.size();
    round->failure.assign(workers_.size(), "");
    round->done.assign(workers_.size(), false);
  }
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options_.health_check_timeout);
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto call = std::make_shared<Call>();
    call->context.set_deadline(deadline);
    workers_[i]->health->async()->Check(
        &call->context, &call->request, &call->response, [round, call, i](grpc::Status status) {
          std::string failure;
          if (!status.ok()) {
            failure = absl::StrCat(
                "health check failed: ", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                ": ", status.error_message());
          } else if (call->response.status() != HealthCheckResponse::SERVING) {
            failure = absl::StrCat("health status ", HealthCheckResponse::ServingStatus_Name(call->response.status()));
          }
          absl::MutexLock lock(&round->mu);
          round->failure[i] = std::move(failure);
          round->done[i] = true;
          --round->pending;
        });
  }
  absl::MutexLock lock(&round->mu);
  // The deadline bounds every call; the extra second only guards against a lost callback.
  auto all_done = [&round]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(round->mu) { return round->pending == 0; };
  round->mu.AwaitWithTimeout(absl::Condition(&all_done), options_.health_check_timeout + absl::Seconds(1));
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (!round->done[i]) {
      SetHealthy(i, false, "health check did not complete", log_all);
    } else {
      SetHealthy(i, round->failure[i].empty(), round->failure[i], log_all);
    }
  }
}

void WorkerPool::WatchLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.health_check_interval)) return;
    }
    CheckAll(/*log_all=*/false);
    const size_t healthy = NumHealthy();
    if (healthy != last_reported_healthy_) {
      last_reported_healthy_ = healthy;
      OCTET_LOG(INFO, "router") << healthy << " of " << workers_.size() << " workers healthy";
      if (listener_) listener_(healthy);
    }
  }
}

}  // namespace octet::router
