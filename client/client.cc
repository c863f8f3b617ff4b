#include "client/client.h"

#include <grpcpp/support/client_interceptor.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace octet::client {
namespace {

absl::StatusOr<std::string> ReadFile(std::string_view what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the ", std::string(what), " ", path));
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Adds `authorization: Bearer <key>` to every call of the channel.
class ApiKeyInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ApiKeyInterceptor(const std::string* header) : header_(header) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* const header_;  // owned by the factory, which the channel keeps
};

class ApiKeyInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit ApiKeyInterceptorFactory(const std::string& key) : header_(absl::StrCat("Bearer ", key)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new ApiKeyInterceptor(&header_);
  }

 private:
  const std::string header_;
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const ConnectOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("a TLS client certificate and its key go together: give both or neither");
  }
  if (!options.tls && options.tls_ca_file.empty() && options.tls_cert_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadFile("TLS CA file", options.tls_ca_file);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (!options.tls_cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadFile("TLS certificate", options.tls_cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile("TLS key", options.tls_key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

void SetDeadline(grpc::ClientContext& context, const CallOptions& options) {
  if (options.timeout == absl::InfiniteDuration()) return;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options.timeout));
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(std::string_view address, const ConnectOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  if (options.api_key.empty()) return grpc::CreateChannel(std::string(address), *credentials);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ApiKeyInterceptorFactory>(options.api_key));
  return grpc::experimental::CreateCustomChannelWithInterceptors(std::string(address), *credentials,
                                                                 grpc::ChannelArguments(), std::move(interceptors));
}

absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile("API key file", path);
  if (!contents.ok()) return contents.status();
  for (absl::string_view line : absl::StrSplit(*contents, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line.front() != '#') return std::string(line);
  }
  return absl::InvalidArgumentError(absl::StrCat("the API key file ", path, " holds no key"));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(std::string_view address, const ConnectOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> made = MakeChannel(address, options);
  if (!made.ok()) return made.status();
  std::shared_ptr<grpc::Channel> channel = *std::move(made);
  if (options.timeout > absl::ZeroDuration()) {
    const auto deadline = std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options.timeout);
    if (!channel->WaitForConnected(deadline)) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", std::string(address), " within ", absl::FormatDuration(options.timeout)));
    }
  }
  return std::make_unique<Client>(std::move(channel));
}

Client::Client(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)), stub_(v1::Generation::NewStub(channel_)) {}

namespace {

// Reads a response stream to its end, handing every message to on_chunk (which may stop it).
absl::Status ReadStream(grpc::ClientContext& context, grpc::ClientReader<v1::GenerateResponse>& stream,
                        const Client::ChunkCallback& on_chunk) {
  grpc::ClientReader<v1::GenerateResponse>* reader = &stream;
  v1::GenerateResponse chunk;
  bool stopped = false;
  while (reader->Read(&chunk)) {
    if (!on_chunk(chunk)) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  const grpc::Status status = reader->Finish();
  if (stopped) return absl::CancelledError("generation stopped by the caller");
  return FromGrpcStatus(status);
}

}  // namespace

absl::Status Client::Generate(const v1::GenerateRequest& request, const ChunkCallback& on_chunk,
                              const CallOptions& options) {
  grpc::ClientContext context;
  SetDeadline(context, options);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub_->Generate(&context, request);
  return ReadStream(context, *reader, on_chunk);
}

absl::Status Client::Chat(const v1::ChatRequest& request, const ChunkCallback& on_chunk, const CallOptions& options) {
  grpc::ClientContext context;
  SetDeadline(context, options);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub_->Chat(&context, request);
  return ReadStream(context, *reader, on_chunk);
}

absl::StatusOr<std::vector<int32_t>> Client::Tokenize(std::string_view text, bool add_special_tokens,
                                                      const CallOptions& options) {
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::TokenizeRequest request;
  request.set_text(std::string(text));
  request.set_add_special_tokens(add_special_tokens);
  v1::TokenizeResponse response;
  if (grpc::Status s = stub_->Tokenize(&context, request, &response); !s.ok()) return FromGrpcStatus(s);
  return std::vector<int32_t>(response.token_ids().begin(), response.token_ids().end());
}

absl::StatusOr<v1::ModelInfo> Client::GetModelInfo(const CallOptions& options) {
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::ModelInfo info;
  if (grpc::Status s = stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info); !s.ok()) {
    return FromGrpcStatus(s);
  }
  return info;
}

}  // namespace octet::client
