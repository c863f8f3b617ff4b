// RouterServer with API keys and a request size limit, in-process in front of a fake worker, driven through
// octet_client: refused calls never reach the worker, health stays open, the in-process channel gets through.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "router/router_server.h"
#include "tests/router/fake_worker.h"

namespace octet::router {
namespace {

using ::testing::HasSubstr;

constexpr char kKey[] = "sk-router-test-1";

class AuthenticatedRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RouterServer>> router =
        RouterServer::Start({.host = "127.0.0.1",
                             .port = 0,
                             .workers = {worker_.address()},
                             .pool = {.health_check_interval = absl::Milliseconds(100)},
                             .api_keys = security::ApiKeySet({"sk-other", kKey}),
                             .max_request_bytes = 1024});
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = *std::move(router);
  }

  void TearDown() override { router_->Shutdown(absl::Seconds(1)); }

  std::unique_ptr<client::Client> Connect(const std::string& api_key) {
    absl::StatusOr<std::unique_ptr<client::Client>> client =
        client::Client::Connect("127.0.0.1:" + std::to_string(router_->port()), {.api_key = api_key});
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  static absl::Status Generate(client::Client& client, const std::string& prompt = "hello") {
    v1::GenerateRequest request;
    request.set_prompt(prompt);
    return client.Generate(request, [](const v1::GenerateResponse&) { return true; }, {.timeout = absl::Seconds(10)});
  }

  static void ExpectUnauthenticated(const absl::Status& status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
    EXPECT_EQ(status.message(), "missing or invalid API key");
  }

  testing::FakeWorker worker_;
  std::unique_ptr<RouterServer> router_;
};

TEST_F(AuthenticatedRouterTest, CallsWithoutAKeyAreRefusedBeforeTheWorker) {
  std::unique_ptr<client::Client> client = Connect("");
  ASSERT_NE(client, nullptr);
  ExpectUnauthenticated(Generate(*client));
  ExpectUnauthenticated(client->Tokenize("hi", false).status());
  ExpectUnauthenticated(client->GetModelInfo().status());
  EXPECT_EQ(worker_.generate_calls.load(), 0);
  EXPECT_EQ(worker_.tokenize_calls.load(), 0);
}

TEST_F(AuthenticatedRouterTest, CallsWithAWrongKeyAreRefused) {
  for (const std::string& wrong : {std::string("sk-router-test-"), std::string("sk-router-test-12"),
                                   std::string("SK-ROUTER-TEST-1"), std::string("sk-router-test-2")}) {
    std::unique_ptr<client::Client> client = Connect(wrong);
    ASSERT_NE(client, nullptr);
    ExpectUnauthenticated(Generate(*client));
    ExpectUnauthenticated(client->Tokenize("hi", false).status());
  }
  EXPECT_EQ(worker_.generate_calls.load(), 0);
}

TEST_F(AuthenticatedRouterTest, CallsWithAKeyOfTheFileAreServed) {
  for (const std::string& key : {std::string(kKey), std::string("sk-other")}) {
    std::unique_ptr<client::Client> client = Connect(key);
    ASSERT_NE(client, nullptr);
    EXPECT_TRUE(Generate(*client).ok());
    absl::StatusOr<std::vector<int32_t>> ids = client->Tokenize("hi", false);
    EXPECT_TRUE(ids.ok()) << ids.status();
    EXPECT_TRUE(client->GetModelInfo().ok());
  }
  EXPECT_EQ(worker_.generate_calls.load(), 2);
}

TEST_F(AuthenticatedRouterTest, HealthNeedsNoKey) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(router_->port()), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(AuthenticatedRouterTest, TheInProcessChannelNeedsNoKey) {
  client::Client client(router_->InProcessChannel());
  EXPECT_TRUE(Generate(client).ok());
  EXPECT_TRUE(client.GetModelInfo().ok());
  EXPECT_EQ(worker_.generate_calls.load(), 1);
}

TEST_F(AuthenticatedRouterTest, ARequestOverTheSizeLimitIsResourceExhausted) {
  std::unique_ptr<client::Client> client = Connect(kKey);
  ASSERT_NE(client, nullptr);
  const absl::Status status = Generate(*client, std::string(2048, 'x'));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("larger than max"));
  EXPECT_EQ(worker_.generate_calls.load(), 0);
  EXPECT_TRUE(Generate(*client, std::string(512, 'x')).ok());
}

}  // namespace
}  // namespace octet::router
