// HttpServer on loopback: the request the handler sees, whole and chunked responses byte for byte, the body limit,
// and a prompt stop.
#include "router/http/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace octet::router::http {
namespace {

// Sends `request` on a new connection and reads until the server closes it.
std::string Exchange(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, static_cast<size_t>(n));
  close(fd);
  return response;
}

std::string Body(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpHandler handler, int64_t max_body_bytes = 1000, HttpGate gate = nullptr) {
    HttpServerOptions options;
    options.host = "127.0.0.1";
    options.max_body_bytes = max_body_bytes;
    options.num_threads = 2;
    absl::StatusOr<std::unique_ptr<HttpServer>> server =
        HttpServer::Start(options, std::move(handler), std::move(gate));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
  }

  // The handler stores the last request here.
  HttpHandler Recording(HttpHandler answer) {
    return [this, answer](const HttpRequest& request, HttpResponder& responder) {
      {
        absl::MutexLock lock(&mu_);
        last_ = request;
      }
      answer(request, responder);
    };
  }
  HttpRequest last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

  std::unique_ptr<HttpServer> server_;
  absl::Mutex mu_;
  HttpRequest last_ ABSL_GUARDED_BY(mu_);
};

TEST_F(HttpServerTest, WholeResponse) {
  Start(Recording([](const HttpRequest&, HttpResponder& out) {
    out.Send(201, "application/json", R"({"ok":true})", {{"X-Test", "yes"}});
  }));
  const std::string response =
      Exchange(server_->port(), "POST /v1/x%20y?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(response.rfind("HTTP/1.1 201 Created\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("Content-Type: application/json\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("Content-Length: 11\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("X-Test: yes\r\n"), std::string::npos) << response;
  EXPECT_EQ(Body(response), R"({"ok":true})");
  HttpRequest request = last();
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/v1/x y");  // decoded, without the query
  EXPECT_EQ(request.body, "hello");
  EXPECT_FALSE(request.body_too_large);
}

TEST_F(HttpServerTest, StreamIsChunkedOneChunkPerWrite) {
  Start([](const HttpRequest&, HttpResponder& out) {
    ASSERT_TRUE(out.StartStream(200, "text/event-stream"));
    EXPECT_TRUE(out.Write("data: 1\n\n"));
    EXPECT_TRUE(out.Write(""));  // nothing to send: no (terminating) empty chunk
    EXPECT_TRUE(out.Write("data: [DONE]\n\n"));
    out.EndStream();
  });
  const std::string response = Exchange(server_->port(), "GET /s HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_NE(response.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << response;
  EXPECT_NE(response.find("Content-Type: text/event-stream\r\n"), std::string::npos) << response;
  EXPECT_EQ(response.find("Content-Length"), std::string::npos) << response;
  EXPECT_EQ(Body(response), "9\r\ndata: 1\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
}

TEST_F(HttpServerTest, Http10StreamIsNotChunked) {
  Start([](const HttpRequest&, HttpResponder& out) {
    out.StartStream(200, "text/event-stream");
    out.Write("data: 1\n\n");
    out.EndStream();
  });
  EXPECT_EQ(Body(Exchange(server_->port(), "GET /s HTTP/1.0\r\n\r\n")), "data: 1\n\n");
}

TEST_F(HttpServerTest, BodyOverTheLimitIsNotRead) {
  Start(Recording([](const HttpRequest& request, HttpResponder& out) {
    out.Send(request.body_too_large ? 413 : 200, "text/plain", "");
  }));
  const std::string big(1001, 'x');
  EXPECT_EQ(Exchange(server_->port(), "POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n" + big).rfind("HTTP/1.1 413", 0),
            0u);
  EXPECT_TRUE(last().body_too_large);
  EXPECT_TRUE(last().body.empty());
  // A chunked body is cut off once it passes the limit.
  const std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" + big + "\r\n0\r\n\r\n";
  EXPECT_EQ(Exchange(server_->port(), chunked).rfind("HTTP/1.1 413", 0), 0u);
  // At the limit is fine.
  const std::string fits(1000, 'y');
  EXPECT_EQ(
      Exchange(server_->port(), "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + fits).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(last().body, fits);
}

TEST_F(HttpServerTest, StopIsPrompt) {
  Start([](const HttpRequest&, HttpResponder& out) { out.Send(200, "text/plain", "ok"); });
  EXPECT_EQ(Body(Exchange(server_->port(), "GET / HTTP/1.1\r\n\r\n")), "ok");
  const absl::Time start = absl::Now();
  server_->Stop();
  // civetweb alone takes up to 2 s to notice the stop.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1000));
  server_->Stop();  // idempotent
}

TEST(HttpServerStartTest, RefusesIpv6AndBusyPorts) {
  HttpServerOptions options;
  options.host = "[::1]";
  absl::StatusOr<std::unique_ptr<HttpServer>> ipv6 = HttpServer::Start(options, nullptr);
  EXPECT_EQ(ipv6.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ipv6.status().message().find("IPv6"), absl::string_view::npos);

  options.host = "127.0.0.1";
  absl::StatusOr<std::unique_ptr<HttpServer>> first = HttpServer::Start(options, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  options.port = (*first)->port();
  absl::StatusOr<std::unique_ptr<HttpServer>> second = HttpServer::Start(options, nullptr);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(absl::StrCat("127.0.0.1:", options.port)), absl::string_view::npos)
      << second.status();
}

// A gate that lets through only requests with "Authorization: Bearer ok", and records what it saw.
TEST_F(HttpServerTest, GateAnswersBeforeTheBodyIsReadAndTheHandlerIsNotCalled) {
  std::atomic<int> handled = 0;
  absl::Mutex gate_mu;
  std::vector<HttpRequest> gated;
  Start(
      [&handled](const HttpRequest&, HttpResponder& out) {
        ++handled;
        out.Send(200, "text/plain", "handled");
      },
      1000,
      [&](const HttpRequest& request, HttpResponder& out) {
        {
          absl::MutexLock lock(&gate_mu);
          gated.push_back(request);
        }
        if (request.authorization == "Bearer ok") return false;
        out.Send(401, "text/plain", "refused", {{"WWW-Authenticate", "Bearer"}});
        return true;
      });
  const std::string refused = Exchange(server_->port(),
                                       "POST /v1/x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer nope\r\n"
                                       "Content-Length: 5\r\n\r\nhello");
  EXPECT_EQ(refused.substr(0, 12), "HTTP/1.1 401");
  EXPECT_NE(refused.find("WWW-Authenticate: Bearer"), std::string::npos) << refused;
  EXPECT_EQ(Body(refused), "refused");
  EXPECT_EQ(handled.load(), 0);

  const std::string passed = Exchange(server_->port(),
                                      "POST /v1/x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ok\r\n"
                                      "Content-Length: 5\r\n\r\nhello");
  EXPECT_EQ(Body(passed), "handled");
  EXPECT_EQ(handled.load(), 1);
  absl::MutexLock lock(&gate_mu);
  ASSERT_EQ(gated.size(), 2u);
  EXPECT_EQ(gated[0].authorization, "Bearer nope");
  EXPECT_EQ(gated[0].path, "/v1/x");
  EXPECT_TRUE(gated[0].body.empty());  // not read yet
  EXPECT_TRUE(gated[1].body.empty());
}

TEST_F(HttpServerTest, TheHandlerSeesTheAuthorizationHeader) {
  Start(Recording([](const HttpRequest&, HttpResponder& out) { out.Send(200, "text/plain", ""); }));
  Exchange(server_->port(), "GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer sk-1\r\n\r\n");
  EXPECT_EQ(last().authorization, "Bearer sk-1");
  Exchange(server_->port(), "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(last().authorization, "");
}

TEST(HttpServerTlsTest, HttpsNeedsACertificateAndItsKey) {
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.tls_cert_file = "server.pem";
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options, [](const HttpRequest&, HttpResponder&) {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

// Reaches civetweb's TLS set-up (the OpenSSL aliases load, civetweb initializes OpenSSL and calls back) and reports
// the unreadable certificate by name.
TEST(HttpServerTlsTest, AnUnreadableCertificateIsReportedByName) {
  HttpServerOptions options;
  options.host = "127.0.0.1";
  options.tls_cert_file = ::testing::TempDir() + "no_such_server.pem";
  options.tls_key_file = ::testing::TempDir() + "no_such_server.key";
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options, [](const HttpRequest&, HttpResponder&) {});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("cannot serve HTTPS"), absl::string_view::npos) << server.status();
  EXPECT_NE(server.status().message().find("no_such_server.pem"), absl::string_view::npos) << server.status();
}

}  // namespace
}  // namespace octet::router::http
