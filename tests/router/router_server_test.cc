// RouterServer in-process, in front of in-process fake workers, driven through octet_client.
#include "router/router_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"
#include "tests/router/fake_worker.h"

namespace octet::router {
namespace {

class RouterServerTest : public ::testing::Test {
 protected:
  void StartRouter(std::vector<std::string> workers) {
    absl::StatusOr<std::unique_ptr<RouterServer>> router =
        RouterServer::Start({.host = "127.0.0.1",
                             .port = 0,
                             .workers = std::move(workers),
                             .pool = {.health_check_interval = absl::Milliseconds(100)}});
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = *std::move(router);
    ASSERT_GT(router_->port(), 0);
    absl::StatusOr<std::unique_ptr<client::Client>> client =
        client::Client::Connect("127.0.0.1:" + std::to_string(router_->port()));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    client_.reset();
    if (router_ != nullptr) router_->Shutdown(absl::Seconds(1));
  }

  // Runs a Generate; returns its status and fills `texts`.
  absl::Status Generate(std::vector<std::string>& texts, absl::Duration timeout = absl::Seconds(10)) {
    v1::GenerateRequest request;
    request.set_prompt("hello");
    return client_->Generate(request,
                             [&texts](const v1::GenerateResponse& chunk) {
                               texts.push_back(chunk.text());
                               return true;
                             },
                             {.timeout = timeout});
  }

  std::unique_ptr<RouterServer> router_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(RouterServerTest, StreamsEveryChunkInOrder) {
  testing::FakeWorker worker;
  worker.num_chunks = 200;  // more than GenerateReactor::kMaxQueuedMessages
  StartRouter({worker.address()});
  std::vector<std::string> texts;
  ASSERT_TRUE(Generate(texts).ok());
  ASSERT_EQ(texts.size(), 201u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(texts[i], "t" + std::to_string(i) + " ");
  EXPECT_EQ(texts.back(), "");
}

TEST_F(RouterServerTest, AlternatesBetweenHealthyWorkers) {
  testing::FakeWorker a;
  testing::FakeWorker b;
  StartRouter({a.address(), b.address()});
  for (int i = 0; i < 6; ++i) {
    std::vector<std::string> texts;
    ASSERT_TRUE(Generate(texts).ok());
  }
  EXPECT_EQ(a.generate_calls.load(), 3);
  EXPECT_EQ(b.generate_calls.load(), 3);
}

TEST_F(RouterServerTest, RetriesOnAnotherWorkerWhenOneIsUnreachable) {
  testing::FakeWorker a;
  testing::FakeWorker b;
  StartRouter({a.address(), b.address()});
  a.Shutdown();  // the request may reach `a` before its health watch ends: then it is retried on `b`
  for (int i = 0; i < 2; ++i) {
    std::vector<std::string> texts;
    EXPECT_TRUE(Generate(texts).ok());
    EXPECT_EQ(texts.size(), 6u);
  }
  EXPECT_EQ(b.generate_calls.load(), 2);
}

TEST_F(RouterServerTest, NoHealthyWorkerIsUnavailable) {
  testing::FakeWorker worker;
  worker.SetServing(false);
  StartRouter({worker.address()});
  std::vector<std::string> texts;
  absl::Status status = Generate(texts);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "no healthy worker (1 configured, 0 healthy)");
  EXPECT_EQ(worker.generate_calls.load(), 0);
}

TEST_F(RouterServerTest, WorkerErrorsKeepTheMessagesSentBeforeThem) {
  testing::FakeWorker worker;
  worker.abort_code = static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
  worker.abort_after = 2;
  worker.abort_message = "queue full";
  StartRouter({worker.address()});
  std::vector<std::string> texts;
  absl::Status status = Generate(texts);
  // A worker failure after the response started: UNAVAILABLE, naming the worker and its own status.
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("worker " + worker.address() + " failed after the response had started"),
            absl::string_view::npos)
      << status.message();
  EXPECT_NE(status.message().find("RESOURCE_EXHAUSTED: queue full"), absl::string_view::npos) << status.message();
  EXPECT_EQ(texts, (std::vector<std::string>{"t0 ", "t1 "}));
}

TEST_F(RouterServerTest, DeadlineAndCancellationReachTheWorker) {
  testing::FakeWorker worker;
  worker.num_chunks = 1000;
  worker.chunk_delay_ms = 10;
  StartRouter({worker.address()});
  v1::GenerateRequest request;
  int received = 0;
  absl::Status status = client_->Generate(request, [&received](const v1::GenerateResponse&) { return ++received < 3; },
                                          {.timeout = absl::Seconds(20)});
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(received, 3);
  const int64_t deadline_ms = worker.last_deadline_ms.load();
  EXPECT_GT(deadline_ms, 15000);
  EXPECT_LE(deadline_ms, 20500);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (worker.cancelled_calls.load() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(worker.cancelled_calls.load(), 1);
}

TEST_F(RouterServerTest, ForwardsUnaryCalls) {
  testing::FakeWorker worker;
  StartRouter({worker.address()});
  absl::StatusOr<std::vector<int32_t>> ids = client_->Tokenize("ab", false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{'a', 'b'}));
  absl::StatusOr<v1::ModelInfo> info = client_->GetModelInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->model_name(), "fake-" + std::to_string(worker.port()));
}

}  // namespace
}  // namespace octet::router
