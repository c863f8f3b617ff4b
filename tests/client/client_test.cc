// octet_client against an in-process fake worker.
#include "client/client.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/router/fake_worker.h"

namespace octet::client {
namespace {

TEST(Client, GenerateCallsBackForEveryChunkInOrder) {
  testing::FakeWorker worker;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(worker.address());
  ASSERT_TRUE(client.ok()) << client.status();
  v1::GenerateRequest request;
  request.set_request_id("r1");
  std::vector<std::string> texts;
  absl::Status status = (*client)->Generate(request, [&texts](const v1::GenerateResponse& chunk) {
    EXPECT_EQ(chunk.request_id(), "r1");
    texts.push_back(chunk.text());
    return true;
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(texts, (std::vector<std::string>{"t0 ", "t1 ", "t2 ", "t3 ", "t4 ", ""}));
}

TEST(Client, CallbackReturningFalseCancelsTheStream) {
  testing::FakeWorker worker;
  worker.num_chunks = 1000;
  worker.chunk_delay_ms = 5;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(worker.address());
  ASSERT_TRUE(client.ok()) << client.status();
  int received = 0;
  absl::Status status =
      (*client)->Generate(v1::GenerateRequest(), [&received](const v1::GenerateResponse&) { return ++received < 2; });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(received, 2);
}

TEST(Client, ServerErrorsKeepTheirCodeAndMessage) {
  testing::FakeWorker worker;
  worker.abort_code = static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT);
  worker.abort_message = "`top_k` must be >= 0";
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(worker.address());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Status status = (*client)->Generate(v1::GenerateRequest(), [](const v1::GenerateResponse&) { return true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "`top_k` must be >= 0");
}

TEST(Client, TimeoutBecomesTheCallDeadline) {
  testing::FakeWorker worker;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(worker.address());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(
      (*client)->Generate(v1::GenerateRequest(), [](const auto&) { return true; }, {.timeout = absl::Seconds(7)}).ok());
  EXPECT_GT(worker.last_deadline_ms.load(), 5000);
  EXPECT_LE(worker.last_deadline_ms.load(), 7500);
  ASSERT_TRUE((*client)->Generate(v1::GenerateRequest(), [](const auto&) { return true; }).ok());
  EXPECT_EQ(worker.last_deadline_ms.load(), -1);
}

TEST(Client, TokenizeAndModelInfo) {
  testing::FakeWorker worker;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(worker.address());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::vector<int32_t>> ids = (*client)->Tokenize("hi", false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(*ids, (std::vector<int32_t>{'h', 'i'}));
  absl::StatusOr<v1::ModelInfo> info = (*client)->GetModelInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->backend(), "cpu");
}

TEST(Client, ConnectFailsWithinItsTimeout) {
  testing::FakeWorker worker;
  const std::string address = worker.address();
  worker.Shutdown();
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, {.timeout = absl::Milliseconds(300)});
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.status().message(), "cannot connect to " + address + " within 300ms");
}

TEST(FromGrpcStatus, KeepsCodeAndMessage) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  const absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "too slow"));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(s.message(), "too slow");
}

}  // namespace
}  // namespace octet::client
