// HttpServer: HTTP/1.1 on civetweb (Debian 12's libcivetweb 1.15): one thread per connection being served, a body
// size limit, whole responses and chunked streams, optionally over TLS. Knows nothing of OpenAI; one handler gets
// every request, after an optional gate that may answer it before its body is read.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mg_context;
struct mg_connection;

namespace octet::router::http {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // URL-decoded, without the query string
  std::string body;
  // The body is longer than HttpServerOptions::max_body_bytes; it was not read (`body` is empty).
  bool body_too_large = false;
  std::string authorization;  // the Authorization header ("" when absent)
};

// How a handler answers one request: either Send once, or StartStream, any number of Write, then EndStream.
class HttpResponder {
 public:
  virtual ~HttpResponder() = default;
  // A whole response with Content-Length.
  virtual void Send(int status, absl::string_view content_type, absl::string_view body,
                    const HttpHeaders& headers = {}) = 0;
  // Sends the head of a streamed response (chunked on HTTP/1.1). False when the client is gone.
  virtual bool StartStream(int status, absl::string_view content_type, const HttpHeaders& headers = {}) = 0;
  // Sends `data` at once (one chunk). False when the client is gone: stop writing.
  virtual bool Write(absl::string_view data) = 0;
  // Ends the stream (the last chunk).
  virtual void EndStream() = 0;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponder&)>;
// Sees every request before its body is read (`body` is empty): returns true when it has answered the request
// itself (a refusal), and the body is then never read nor the handler called.
using HttpGate = std::function<bool(const HttpRequest&, HttpResponder&)>;

struct HttpServerOptions {
  std::string host = "0.0.0.0";  // an IPv4 address or a host name; IPv6 is not supported (civetweb without IPv6)
  int port = 0;                  // 0 picks a free port
  int64_t max_body_bytes = 4 << 20;
  // Connections served at once; each streaming request holds one for its whole length, and more wait in the
  // accept queue.
  int num_threads = 64;
  // How long one read or write of a connection may block (a client that stops reading a stream is dropped).
  int io_timeout_ms = 30000;
  // HTTPS with this PEM certificate chain and its PEM private key (both or neither; plain HTTP when empty).
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  // Binds and starts serving; `gate` (if any) and then `handler` are called on the connection's thread for every
  // request.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, HttpHandler handler,
                                                           HttpGate gate = nullptr);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Closes the listening socket and every connection, and waits for running handlers to return. Idempotent.
  void Stop();

 private:
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpGate gate);
  static int OnRequest(mg_connection* conn);
  // civetweb's init_ssl callback: loads the certificate and key into its SSL_CTX.
  static int InitTls(void* ssl_ctx, void* user_data);

  const HttpServerOptions options_;
  const HttpHandler handler_;
  const HttpGate gate_;
  std::string tls_error_;  // why InitTls failed
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace octet::router::http
