// MetricsHttpServer: serves GET /metrics (the Prometheus text exposition from a callback) on one thread. A small
// server of its own: prometheus-cpp's civetweb Exposer cannot start its threads inside octet-worker (civetweb 1.15 of
// Debian 12 under prometheus-cpp-pull 1.0: "Cannot create threads"), though it does in a bare program.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace octet {

class MetricsHttpServer {
 public:
  // Binds host:port (port 0 picks one) and starts serving. Unavailable when it cannot bind.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& host, int port,
                                                                  std::function<std::string()> scrape);
  ~MetricsHttpServer();  // stops within ~0.2 s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttpServer(int fd, int port, std::function<std::string()> scrape);
  void Loop();
  void Serve(int client);

  int fd_;
  int port_;
  std::function<std::string()> scrape_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace octet
