#include "router/http/http_server.h"

#include <civetweb.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "router/http/civetweb_openssl.h"

namespace octet::router::http {
namespace {

// Reads the body: at most `max_bytes`, else nothing (`too_large`). Content-Length is checked before reading;
// a chunked body is read until it passes the limit. civetweb discards what is left unread after the handler.
std::string ReadBody(mg_connection* conn, const mg_request_info& info, int64_t max_bytes, bool* too_large) {
  *too_large = false;
  std::string body;
  if (info.content_length > max_bytes) {
    *too_large = true;
    return body;
  }
  if (info.content_length > 0) body.reserve(static_cast<size_t>(info.content_length));
  char buffer[16384];
  while (true) {
    const int n = mg_read(conn, buffer, sizeof(buffer));
    if (n <= 0) break;
    body.append(buffer, static_cast<size_t>(n));
    if (static_cast<int64_t>(body.size()) > max_bytes) {
      *too_large = true;
      body.clear();
      break;
    }
  }
  return body;
}

class CivetResponder final : public HttpResponder {
 public:
  explicit CivetResponder(mg_connection* conn)
      : conn_(conn), chunked_(absl::string_view(mg_get_request_info(conn)->http_version) != "1.0") {}

  int status() const { return status_; }

  void Send(int status, absl::string_view content_type, absl::string_view body, const HttpHeaders& headers) override {
    if (!SendHead(status, content_type, headers, absl::StrCat(body.size()))) return;
    if (!body.empty()) mg_write(conn_, body.data(), body.size());
  }

  bool StartStream(int status, absl::string_view content_type, const HttpHeaders& headers) override {
    streaming_ = true;
    return SendHead(status, content_type, headers, "");
  }

  bool Write(absl::string_view data) override {
    if (data.empty()) return true;
    if (!chunked_) return mg_write(conn_, data.data(), data.size()) > 0;
    // One write per chunk: size line, data and CRLF together.
    std::string chunk = absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n");
    return mg_write(conn_, chunk.data(), chunk.size()) > 0;
  }

  void EndStream() override {
    if (streaming_ && chunked_) mg_write(conn_, "0\r\n\r\n", 5);
    streaming_ = false;
  }

 private:
  // Status line and headers; `content_length` empty means a stream (chunked on HTTP/1.1).
  bool SendHead(int status, absl::string_view content_type, const HttpHeaders& headers,
                const std::string& content_length) {
    status_ = status;
    if (mg_response_header_start(conn_, status) != 0) return false;
    mg_response_header_add(conn_, "Content-Type", content_type.data(), static_cast<int>(content_type.size()));
    if (!content_length.empty()) {
      mg_response_header_add(conn_, "Content-Length", content_length.c_str(), -1);
    } else {
      mg_response_header_add(conn_, "Cache-Control", "no-cache", -1);
      if (chunked_) mg_response_header_add(conn_, "Transfer-Encoding", "chunked", -1);
    }
    for (const auto& [name, value] : headers) {
      mg_response_header_add(conn_, name.c_str(), value.c_str(), static_cast<int>(value.size()));
    }
    return mg_response_header_send(conn_) == 0;
  }

  mg_connection* const conn_;
  const bool chunked_;
  bool streaming_ = false;
  int status_ = 500;
};

// Opens and closes a connection to host:port (the wildcard address through loopback).
void Knock(const std::string& host, int port) {
  std::string address = host;
  if (address.empty() || address == "0.0.0.0") address = "127.0.0.1";
  addrinfo hints = {};
  hints.ai_flags = AI_NUMERICSERV;
  hints.ai_family = AF_INET;  // the server is IPv4 only
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    (void)connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(found);
}

int LogMessage(const mg_connection*, const char* message) {
  OCTET_LOG(WARNING, "http") << "civetweb: " << message;
  return 1;
}

// The last OpenSSL error of this thread, for a message.
std::string OpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  char text[256] = {};
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return code != 0 ? std::string(text) : std::string("unknown OpenSSL error");
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler, HttpGate gate)
    : options_(std::move(options)), handler_(std::move(handler)), gate_(std::move(gate)) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options, HttpHandler handler,
                                                              HttpGate gate) {
  static std::once_flag init_library;
  std::call_once(init_library, [] { mg_init_library(0); });

  if (absl::StrContains(options.host, ':')) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve HTTP on ", options.host,
                                                   ": IPv6 addresses are not supported (Debian's civetweb is built "
                                                   "without IPv6); use an IPv4 address such as 0.0.0.0"));
  }
  const bool tls = !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (tls && (options.tls_cert_file.empty() || options.tls_key_file.empty())) {
    return absl::InvalidArgumentError("HTTPS needs both a certificate and its key");
  }
  if (tls) {
    if (absl::Status s = PrepareCivetwebOpenSsl(); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("cannot serve HTTPS: ", s.message()));
    }
  }
  std::unique_ptr<HttpServer> server(new HttpServer(options, std::move(handler), std::move(gate)));
  const std::string listening = absl::StrCat(options.host, ":", options.port);
  // No keep-alive: an idle kept-alive connection would hold one of the threads. TCP_NODELAY: each stream chunk
  // goes out at once.
  const std::vector<std::pair<const char*, std::string>> settings = {
      {"listening_ports", tls ? absl::StrCat(listening, "s") : listening},
      {"num_threads", absl::StrCat(std::max(1, options.num_threads))},
      {"request_timeout_ms", absl::StrCat(std::max(1, options.io_timeout_ms))},
      {"enable_keep_alive", "no"},
      {"tcp_nodelay", "1"},
  };
  std::vector<const char*> config;
  for (const auto& [name, value] : settings) {
    config.push_back(name);
    config.push_back(value.c_str());
  }
  config.push_back(nullptr);
  mg_callbacks callbacks = {};
  callbacks.begin_request = &HttpServer::OnRequest;
  callbacks.log_message = &LogMessage;
  if (tls) callbacks.init_ssl = &HttpServer::InitTls;
  mg_init_data init = {};
  init.callbacks = &callbacks;
  init.user_data = server.get();
  init.configuration_options = config.data();
  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error = {};
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  server->context_ = mg_start2(&init, &error);
  if (server->context_ == nullptr) {
    const std::string why = !server->tls_error_.empty() ? server->tls_error_
                            : error_text[0] != '\0'     ? std::string(error_text)
                                                        : std::string("civetweb failed to start");
    return absl::UnavailableError(absl::StrCat("cannot serve HTTP", tls ? "S" : "", " on ", listening, ": ", why));
  }
  mg_server_port ports[4] = {};
  if (mg_get_server_ports(server->context_, 4, ports) < 1) {
    return absl::InternalError(absl::StrCat("HTTP server on ", listening, " reports no listening port"));
  }
  server->port_ = ports[0].port;
  return server;
}

void HttpServer::Stop() {
  if (context_ == nullptr) return;
  // civetweb's listening thread sees the stop flag only when its poll returns, after up to 2 s; a connection to the
  // port makes it return at once.
  std::atomic<bool> stopped = false;
  std::thread stopper([this, &stopped] {
    mg_stop(context_);
    stopped = true;
  });
  while (!stopped) {
    Knock(options_.host, port_);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stopper.join();
  context_ = nullptr;
}

int HttpServer::InitTls(void* ssl_ctx, void* user_data) {
  auto* server = static_cast<HttpServer*>(user_data);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  if (SSL_CTX_use_certificate_chain_file(ctx, server->options_.tls_cert_file.c_str()) != 1) {
    server->tls_error_ = absl::StrCat("certificate ", server->options_.tls_cert_file, ": ", OpenSslError());
    return -1;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, server->options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    server->tls_error_ = absl::StrCat("private key ", server->options_.tls_key_file, ": ", OpenSslError());
    return -1;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  return 1;  // civetweb loads no certificate of its own
}

int HttpServer::OnRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  auto* server = static_cast<HttpServer*>(info->user_data);
  HttpRequest request;
  request.method = info->request_method != nullptr ? info->request_method : "";
  request.path = info->local_uri != nullptr ? info->local_uri : "";
  const char* authorization = mg_get_header(conn, "Authorization");
  request.authorization = authorization != nullptr ? authorization : "";
  CivetResponder responder(conn);
  if (server->gate_ && server->gate_(request, responder)) return responder.status();
  request.body = ReadBody(conn, *info, server->options_.max_body_bytes, &request.body_too_large);
  server->handler_(request, responder);
  return responder.status();
}

}  // namespace octet::router::http
