// octet-router: the front door. Forwards octet.v1.Generation calls to a fixed list of workers.
#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "base/flag_names.h"
#include "base/log.h"
#include "base/metrics_http_server.h"
#include "router/http/http_front_end.h"
#include "router/router_metrics.h"
#include "router/router_server.h"
#include "router/security/api_keys.h"
#include "router/security/tls_files.h"
#include "router/worker_pool.h"

ABSL_FLAG(std::string, workers, "", "Comma-separated worker addresses, HOST:PORT each (this or --workers-dns)");
ABSL_FLAG(std::string, workers_dns, "",
          "NAME:PORT whose addresses are the workers (e.g. a Kubernetes headless Service), re-resolved every "
          "--dns-refresh-interval; workers that appear are added, those that go are taken out");
ABSL_FLAG(absl::Duration, dns_refresh_interval, absl::Seconds(5), "How often --workers-dns is resolved again");
ABSL_FLAG(std::string, policy, "least-load",
          "Routing: least-load (fewest outstanding tokens for the KV capacity, from the workers' load reports), "
          "prefix-affinity (requests sharing their first prompt tokens go to one worker, bounded at 1.25x the "
          "average load), round-robin");
ABSL_FLAG(int, prefix_affinity_tokens, 128, "prefix-affinity: how many leading prompt tokens key the worker");
ABSL_FLAG(int, max_attempts, 3,
          "Attempts a request may make on different workers before its first response message (failover)");
ABSL_FLAG(int, max_inflight_requests, 4096,
          "Requests the router serves at once; one more gets RESOURCE_EXHAUSTED at once (0 = no bound)");
ABSL_FLAG(int, circuit_breaker_failures, 3,
          "Consecutive failures (not client errors) that take a worker out for --circuit-breaker-cooldown");
ABSL_FLAG(absl::Duration, circuit_breaker_cooldown, absl::Seconds(5), "How long a failing worker is taken out");
ABSL_FLAG(int, metrics_port, 0, "Port of the Prometheus endpoint /metrics on --host (0 = none)");
ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on");
ABSL_FLAG(int, port, 50051, "Port to listen on; 0 picks a free one (printed once serving)");
ABSL_FLAG(absl::Duration, health_check_interval, absl::Milliseconds(250),
          "Pause between rounds of worker load reports (health itself streams from a grpc.health.v1 Watch per worker; "
          "a round also restarts ended Watches and Checks workers without Watch)");
ABSL_FLAG(absl::Duration, health_check_timeout, absl::Milliseconds(500),
          "Deadline of one worker health check; a worker that misses it is unhealthy");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGTERM/SIGINT, how long running calls may continue before they are cancelled");
ABSL_FLAG(int, http_port, -1,
          "Port of the OpenAI-compatible HTTP front end (/v1/completions, /v1/chat/completions, /v1/models, "
          "/health); -1 (the default) serves no HTTP, 0 picks a free port (printed once serving)");
ABSL_FLAG(std::string, http_host, "",
          "IPv4 address the HTTP front end listens on (default: --host; an IPv6 wildcard or loopback there is "
          "taken as 0.0.0.0 or 127.0.0.1)");
ABSL_FLAG(int64_t, http_max_body_bytes, 4 << 20, "Largest HTTP request body accepted; larger ones get 413");
ABSL_FLAG(int, http_threads, 64,
          "HTTP connections served at once (a streaming request holds one while it runs; more wait)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve gRPC and HTTP over TLS (with --tls-key; default: plaintext)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert (unencrypted)");
ABSL_FLAG(std::string, api_key_file, "",
          "File of API keys, one a line ('#' comments and blank lines ignored), read at start-up: every "
          "octet.v1.Generation call and every HTTP request but /health then needs 'Authorization: Bearer <key>'");
ABSL_FLAG(std::string, worker_tls_ca, "",
          "PEM CA certificates the workers' certificates are checked against: TLS to the workers");
ABSL_FLAG(std::string, worker_tls_cert, "",
          "PEM client certificate the router shows the workers (mutual TLS; with --worker-tls-key)");
ABSL_FLAG(std::string, worker_tls_key, "", "PEM private key of --worker-tls-cert (unencrypted)");
ABSL_FLAG(std::string, worker_tls_server_name, "",
          "Name every worker's certificate must carry (default: the worker's address as given or resolved)");
ABSL_FLAG(int32_t, max_request_bytes, 4 << 20,
          "Largest gRPC request message accepted; a larger one gets RESOURCE_EXHAUSTED");

namespace {

// The address a local client connects to (a wildcard bind is reachable on loopback).
std::string ConnectHost(const std::string& host) {
  if (host == "0.0.0.0" || host.empty()) return "127.0.0.1";
  if (host == "::" || host == "[::]") return "[::1]";
  return host;
}

// The HTTP front end's default address: --host, with an IPv6 wildcard or loopback taken as its IPv4 counterpart
// (the HTTP server is IPv4 only).
std::string HttpHostFor(const std::string& host) {
  if (host == "::" || host == "[::]") return "0.0.0.0";
  if (host == "::1" || host == "[::1]") return "127.0.0.1";
  return host;
}

// --worker-tls-*: TLS to the workers when a CA or a client certificate is given.
absl::StatusOr<octet::router::WorkerTlsOptions> WorkerTlsFromFlags() {
  octet::router::WorkerTlsOptions tls;
  const std::string ca = absl::GetFlag(FLAGS_worker_tls_ca);
  absl::StatusOr<octet::router::security::KeyPair> pair =
      octet::router::security::ReadKeyPair("--worker-tls-cert", absl::GetFlag(FLAGS_worker_tls_cert),
                                           "--worker-tls-key", absl::GetFlag(FLAGS_worker_tls_key));
  if (!pair.ok()) return pair.status();
  tls.server_name = absl::GetFlag(FLAGS_worker_tls_server_name);
  tls.enabled = !ca.empty() || !pair->cert_chain.empty();
  if (!tls.enabled && !tls.server_name.empty()) {
    return absl::InvalidArgumentError("--worker-tls-server-name needs --worker-tls-ca (or --worker-tls-cert)");
  }
  if (!ca.empty()) {
    absl::StatusOr<std::string> roots = octet::router::security::ReadCertificates("--worker-tls-ca", ca);
    if (!roots.ok()) return roots.status();
    tls.root_certs = *std::move(roots);
  }
  tls.cert_chain = std::move(pair->cert_chain);
  tls.private_key = std::move(pair->private_key);
  return tls;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "octet-router --workers HOST:PORT[,HOST:PORT...] [--port N] [--http-port N]\n"
      "Serves octet.v1.Generation, grpc.health.v1 and reflection (and, with --http-port, an OpenAI-compatible HTTP\n"
      "API); forwards each call to a healthy worker.");
  // Both spellings of flag names work: --health-check-interval and --health_check_interval.
  std::vector<std::string> args = octet::NormalizeFlagNames(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  if (positional.size() > 1) {
    std::fprintf(stderr, "octet-router: unexpected argument '%s' (all options are --flags)\n", positional[1]);
    return 2;
  }

  // SIGINT/SIGTERM are blocked in every thread (gRPC's threads inherit the mask, so block before any starts);
  // the main thread takes them with sigwait and shuts down in order.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (absl::GetFlag(FLAGS_http_max_body_bytes) < 1) {
    std::fprintf(stderr, "octet-router: --http-max-body-bytes must be >= 1\n");
    return 2;
  }
  absl::StatusOr<std::vector<std::string>> workers = std::vector<std::string>{};
  if (absl::GetFlag(FLAGS_workers_dns).empty() || !absl::GetFlag(FLAGS_workers).empty()) {
    workers = octet::router::ParseWorkerAddresses(absl::GetFlag(FLAGS_workers));
  }
  if (!workers.ok()) {
    std::fprintf(stderr, "octet-router: %s (or give --workers-dns NAME:PORT)\n",
                 std::string(workers.status().message()).c_str());
    return 2;
  }
  if (const std::string dns = absl::GetFlag(FLAGS_workers_dns); !dns.empty()) {
    if (absl::StatusOr<std::vector<std::string>> resolved = octet::router::ResolveWorkerAddresses(dns);
        !resolved.ok()) {
      std::fprintf(stderr, "octet-router: %s\n", std::string(resolved.status().message()).c_str());
      return 2;
    }
  }
  absl::StatusOr<octet::router::security::KeyPair> tls = octet::router::security::ReadKeyPair(
      "--tls-cert", absl::GetFlag(FLAGS_tls_cert), "--tls-key", absl::GetFlag(FLAGS_tls_key));
  if (!tls.ok()) {
    std::fprintf(stderr, "octet-router: %s\n", std::string(tls.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<octet::router::WorkerTlsOptions> worker_tls = WorkerTlsFromFlags();
  if (!worker_tls.ok()) {
    std::fprintf(stderr, "octet-router: %s\n", std::string(worker_tls.status().message()).c_str());
    return 2;
  }
  std::optional<octet::router::security::ApiKeySet> api_keys;
  if (const std::string path = absl::GetFlag(FLAGS_api_key_file); !path.empty()) {
    absl::StatusOr<octet::router::security::ApiKeySet> loaded = octet::router::security::ApiKeySet::LoadFile(path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "octet-router: --api-key-file: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    api_keys = *std::move(loaded);
  }
  octet::router::RouterOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.workers = *std::move(workers);
  options.pool.health_check_interval = absl::GetFlag(FLAGS_health_check_interval);
  options.pool.health_check_timeout = absl::GetFlag(FLAGS_health_check_timeout);
  options.pool.dns_target = absl::GetFlag(FLAGS_workers_dns);
  options.pool.dns_refresh_interval = absl::GetFlag(FLAGS_dns_refresh_interval);
  options.pool.circuit_breaker_failures = absl::GetFlag(FLAGS_circuit_breaker_failures);
  options.pool.circuit_breaker_cooldown = absl::GetFlag(FLAGS_circuit_breaker_cooldown);
  options.policy = absl::GetFlag(FLAGS_policy);
  options.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  options.max_inflight = absl::GetFlag(FLAGS_max_inflight_requests);
  options.prefix_tokens = absl::GetFlag(FLAGS_prefix_affinity_tokens);
  options.pool.tls = *std::move(worker_tls);
  options.tls = *tls;
  options.api_keys = api_keys;
  options.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  octet::router::RouterMetrics metrics;  // outlives the router, which reports to it
  if (absl::GetFlag(FLAGS_metrics_port) > 0) options.observer = &metrics;

  absl::StatusOr<std::unique_ptr<octet::router::RouterServer>> router =
      octet::router::RouterServer::Start(std::move(options));
  if (!router.ok()) {
    std::fprintf(stderr, "octet-router: %s\n", std::string(router.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<octet::MetricsHttpServer> metrics_server;
  if (const int metrics_port = absl::GetFlag(FLAGS_metrics_port); metrics_port > 0) {
    octet::router::RouterServer* server = router->get();
    absl::StatusOr<std::unique_ptr<octet::MetricsHttpServer>> started = octet::MetricsHttpServer::Start(
        absl::GetFlag(FLAGS_host), metrics_port,
        [&metrics, server] { return metrics.Scrape(server->pool(), server->num_inflight()); });
    if (!started.ok()) {
      std::fprintf(stderr, "octet-router: %s\n", std::string(started.status().message()).c_str());
      (*router)->Shutdown(absl::ZeroDuration());
      return 1;
    }
    metrics_server = *std::move(started);
    OCTET_LOG(INFO, "router") << "metrics on port " << metrics_server->port() << " /metrics";
  }
  std::fprintf(stderr, "octet-router listening on %s:%d\n", ConnectHost(absl::GetFlag(FLAGS_host)).c_str(),
               (*router)->port());
  std::fflush(stderr);

  std::unique_ptr<octet::router::http::HttpFrontEnd> http_front_end;
  if (absl::GetFlag(FLAGS_http_port) >= 0) {
    octet::router::http::HttpServerOptions http_options;
    http_options.host = absl::GetFlag(FLAGS_http_host);
    if (http_options.host.empty()) http_options.host = HttpHostFor(absl::GetFlag(FLAGS_host));
    http_options.port = absl::GetFlag(FLAGS_http_port);
    http_options.max_body_bytes = absl::GetFlag(FLAGS_http_max_body_bytes);
    http_options.num_threads = absl::GetFlag(FLAGS_http_threads);
    http_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
    http_options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
    absl::StatusOr<std::unique_ptr<octet::router::http::HttpFrontEnd>> started =
        octet::router::http::HttpFrontEnd::Start(http_options, (*router)->InProcessChannel(), api_keys);
    if (!started.ok()) {
      std::fprintf(stderr, "octet-router: %s\n", std::string(started.status().message()).c_str());
      (*router)->Shutdown(absl::ZeroDuration());
      return 1;
    }
    http_front_end = *std::move(started);
    std::fprintf(stderr, "octet-router http listening on %s:%d\n", ConnectHost(http_options.host).c_str(),
                 http_front_end->port());
    std::fflush(stderr);
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  OCTET_LOG(INFO, "router") << "received " << strsignal(signal_number);
  // One grace period for both front ends: HTTP requests finish (or are cancelled) first, then gRPC calls.
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_shutdown_grace);
  if (http_front_end != nullptr) http_front_end->Shutdown(deadline);
  (*router)->Shutdown(std::max(absl::ZeroDuration(), deadline - absl::Now()));
  return 0;
}
