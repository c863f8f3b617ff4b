// octet_client's ConnectOptions: the API key on every call of a channel, the API key file, TLS option errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/client.h"
#include "octet/v1/generation.grpc.pb.h"

namespace octet::client {
namespace {

// Answers GetModelInfo and Tokenize, and keeps the `authorization` metadata of every call ("<none>" when absent).
class RecordingServer final : public v1::Generation::Service {
 public:
  RecordingServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~RecordingServer() override { server_->Shutdown(); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  grpc::Status GetModelInfo(grpc::ServerContext* context, const v1::GetModelInfoRequest*,
                            v1::ModelInfo* response) override {
    Record(*context);
    response->set_model_name("recorded");
    return grpc::Status::OK;
  }
  grpc::Status Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest*, v1::TokenizeResponse*) override {
    Record(*context);
    return grpc::Status::OK;
  }

  std::vector<std::string> authorizations() {
    std::lock_guard<std::mutex> lock(mu_);
    return authorizations_;
  }

 private:
  void Record(const grpc::ServerContext& context) {
    std::vector<std::string> values;
    const auto range = context.client_metadata().equal_range("authorization");
    for (auto it = range.first; it != range.second; ++it) values.emplace_back(it->second.data(), it->second.size());
    std::lock_guard<std::mutex> lock(mu_);
    authorizations_.push_back(values.empty() ? "<none>" : values.size() == 1 ? values[0] : "<several>");
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::vector<std::string> authorizations_;
};

TEST(ConnectOptions, TheApiKeyIsSentAsABearerTokenOnEveryCall) {
  RecordingServer server;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(server.address(), {.api_key = "sk-client-1"});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->GetModelInfo().ok());
  ASSERT_TRUE((*client)->Tokenize("hi", false).ok());
  ASSERT_TRUE((*client)->GetModelInfo().ok());
  EXPECT_EQ(server.authorizations(), (std::vector<std::string>(3, "Bearer sk-client-1")));
}

TEST(ConnectOptions, WithoutAKeyNoAuthorizationIsSent) {
  RecordingServer server;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(server.address());
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->GetModelInfo().ok());
  EXPECT_EQ(server.authorizations(), (std::vector<std::string>{"<none>"}));
}

TEST(ConnectOptions, MakeChannelGivesAChannelThatCarriesTheKey) {
  RecordingServer server;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(server.address(), {.api_key = "sk-bench"});
  ASSERT_TRUE(channel.ok()) << channel.status();
  Client client(*channel);
  ASSERT_TRUE(client.GetModelInfo().ok());
  EXPECT_EQ(server.authorizations(), (std::vector<std::string>{"Bearer sk-bench"}));
}

TEST(ConnectOptions, TlsFileErrorsComeBeforeAnyConnection) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> missing_ca =
      MakeChannel("127.0.0.1:1", {.tls_ca_file = ::testing::TempDir() + "no_such_ca.pem"});
  EXPECT_EQ(missing_ca.status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> cert_without_key =
      MakeChannel("127.0.0.1:1", {.tls_cert_file = "client.pem"});
  EXPECT_EQ(cert_without_key.status().code(), absl::StatusCode::kInvalidArgument);
}

class ApiKeyFileTest : public ::testing::Test {
 protected:
  void TearDown() override { std::remove(path_.c_str()); }
  const std::string& Write(const std::string& contents) {
    std::ofstream(path_, std::ios::binary) << contents;
    return path_;
  }
  const std::string path_ = ::testing::TempDir() + "client_api_key_" + std::to_string(getpid());
};

TEST_F(ApiKeyFileTest, TheKeyIsTheFirstLineThatIsNotBlankOrAComment) {
  absl::StatusOr<std::string> key = ReadApiKeyFile(Write("# my key\n\n   sk-from-file  \r\nsk-second\n"));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(*key, "sk-from-file");
}

TEST_F(ApiKeyFileTest, AFileWithoutAKeyIsAnError) {
  absl::StatusOr<std::string> key = ReadApiKeyFile(Write("# nothing\n\n"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadApiKeyFile(::testing::TempDir() + "no_such_key_file").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace octet::client
