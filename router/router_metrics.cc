#include "router/router_metrics.h"

#include "absl/status/status.h"
#include "prometheus/text_serializer.h"

namespace octet::router {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries buckets = {0.005, 0.01, 0.02, 0.04, 0.08, 0.1,  0.25,  0.5,  1.0,
                                                      2.5,   5.0,  10.0, 20.0, 40.0, 80.0, 160.0, 320.0};
  return buckets;
}

std::string CodeName(grpc::StatusCode code) { return absl::StatusCodeToString(static_cast<absl::StatusCode>(code)); }

}  // namespace

RouterMetrics::RouterMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  requests_ = &BuildCounter()
                   .Name("octet_router_requests_total")
                   .Help("Generate requests ended, by the worker of their last attempt and gRPC status")
                   .Register(r);
  retries_ = &BuildCounter()
                  .Name("octet_router_retries_total")
                  .Help("Attempts retried on another worker before the first message, by how they failed")
                  .Register(r);
  decisions_ = &BuildCounter()
                    .Name("octet_router_routing_decisions_total")
                    .Help("Attempts sent to a worker, by policy and worker")
                    .Register(r);
  worker_up_ = &BuildGauge()
                    .Name("octet_router_worker_up")
                    .Help("1 when the worker may get new requests (listed, healthy, not draining, circuit closed)")
                    .Register(r);
  worker_healthy_ =
      &BuildGauge().Name("octet_router_worker_healthy").Help("1 when the worker's health check passes").Register(r);
  worker_circuit_open_ = &BuildGauge()
                              .Name("octet_router_worker_circuit_open")
                              .Help("1 while the circuit breaker keeps the worker out after failures")
                              .Register(r);
  worker_inflight_ = &BuildGauge()
                          .Name("octet_router_worker_inflight_requests")
                          .Help("This router's calls running on the worker")
                          .Register(r);
  rejected_ = &BuildCounter()
                   .Name("octet_router_rejected_total")
                   .Help("Requests refused at once: the router was at --max-inflight-requests")
                   .Register(r)
                   .Add({});
  failed_after_first_ = &BuildCounter()
                             .Name("octet_router_failed_after_first_message_total")
                             .Help("Requests whose worker failed after their response had started (UNAVAILABLE)")
                             .Register(r)
                             .Add({});
  inflight_ =
      &BuildGauge().Name("octet_router_inflight_requests").Help("Requests the router is serving").Register(r).Add({});
  workers_listed_ = &BuildGauge()
                         .Name("octet_router_workers")
                         .Help("Workers in the static list or the latest DNS resolution")
                         .Register(r)
                         .Add({});
  first_message_ = &BuildHistogram()
                        .Name("octet_router_time_to_first_message_seconds")
                        .Help("From a request's arrival to its first response message (retries included)")
                        .Register(r)
                        .Add({}, LatencyBuckets());
  duration_ = &BuildHistogram()
                   .Name("octet_router_request_duration_seconds")
                   .Help("From a request's arrival to its end")
                   .Register(r)
                   .Add({}, LatencyBuckets());
}

std::string RouterMetrics::Scrape(const WorkerPool& pool, int inflight) {
  inflight_->Set(inflight);
  workers_listed_->Set(static_cast<double>(pool.NumListed()));
  for (size_t w = 0; w < pool.size(); ++w) {
    const prometheus::Labels labels = {{"worker", pool.address(w)}};
    worker_up_->Add(labels).Set(pool.IsAvailable(w) ? 1 : 0);
    worker_healthy_->Add(labels).Set(pool.IsListed(w) && pool.IsHealthy(w) ? 1 : 0);
    worker_circuit_open_->Add(labels).Set(pool.IsCircuitOpen(w) ? 1 : 0);
    worker_inflight_->Add(labels).Set(pool.Load(w).router_calls);
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void RouterMetrics::OnRejected() { rejected_->Increment(); }

void RouterMetrics::OnRouted(std::string_view policy, std::string_view worker) {
  decisions_->Add({{"policy", std::string(policy)}, {"worker", std::string(worker)}}).Increment();
}

void RouterMetrics::OnRetry(grpc::StatusCode code) { retries_->Add({{"status", CodeName(code)}}).Increment(); }

void RouterMetrics::OnFirstMessage(double seconds) { first_message_->Observe(seconds); }

void RouterMetrics::OnRequestEnd(std::string_view worker, grpc::StatusCode code, double seconds,
                                 bool after_first_message) {
  requests_->Add({{"worker", worker.empty() ? "none" : std::string(worker)}, {"status", CodeName(code)}}).Increment();
  duration_->Observe(seconds);
  if (after_first_message) failed_after_first_->Increment();
}

}  // namespace octet::router
