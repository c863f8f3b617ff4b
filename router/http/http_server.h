// HttpServer: HTTP/1.1 on civetweb (Debian 12's libcivetweb 1.15): one thread per connection being served, a body
// size limit, whole responses and chunked streams. Knows nothing of OpenAI; one handler gets every request.
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

struct HttpServerOptions {
  std::string host = "0.0.0.0";  // an IPv4 address or a host name; IPv6 is not supported (civetweb without IPv6)
  int port = 0;                  // 0 picks a free port
  int64_t max_body_bytes = 4 << 20;
  // Connections served at once; each streaming request holds one for its whole length, and more wait in the
  // accept queue.
  int num_threads = 64;
  // How long one read or write of a connection may block (a client that stops reading a stream is dropped).
  int io_timeout_ms = 30000;
};

class HttpServer {
 public:
  // Binds and starts serving; `handler` is called on the connection's thread for every request.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options, HttpHandler handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Closes the listening socket and every connection, and waits for running handlers to return. Idempotent.
  void Stop();

 private:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  static int OnRequest(mg_connection* conn);

  const HttpServerOptions options_;
  const HttpHandler handler_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace octet::router::http
