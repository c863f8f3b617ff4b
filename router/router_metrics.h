// RouterMetrics: the router's Prometheus metrics (`octet_router_*`, base units), fed by the forwarding reactors
// (RouterObserver) and, at each scrape, by the worker pool's state. Served at --metrics-port /metrics.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "router/router_observer.h"
#include "router/worker_pool.h"

namespace octet::router {

class RouterMetrics final : public RouterObserver {
 public:
  RouterMetrics();

  // The text exposition, with the per-worker gauges and in-flight count read from `pool` and `inflight` now.
  std::string Scrape(const WorkerPool& pool, int inflight);

  void OnRejected() override;
  void OnRouted(std::string_view policy, std::string_view worker) override;
  void OnRetry(grpc::StatusCode code) override;
  void OnFirstMessage(double seconds) override;
  void OnRequestEnd(std::string_view worker, grpc::StatusCode code, double seconds, bool after_first_message) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Counter>* retries_;
  prometheus::Family<prometheus::Counter>* decisions_;
  prometheus::Family<prometheus::Gauge>* worker_up_;
  prometheus::Family<prometheus::Gauge>* worker_healthy_;
  prometheus::Family<prometheus::Gauge>* worker_circuit_open_;
  prometheus::Family<prometheus::Gauge>* worker_inflight_;
  prometheus::Counter* rejected_;
  prometheus::Counter* failed_after_first_;
  prometheus::Gauge* inflight_;
  prometheus::Gauge* workers_listed_;
  prometheus::Histogram* first_message_;
  prometheus::Histogram* duration_;
};

}  // namespace octet::router
