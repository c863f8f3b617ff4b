#include "client/client.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace octet::client {
namespace {

void SetDeadline(grpc::ClientContext& context, const CallOptions& options) {
  if (options.timeout == absl::InfiniteDuration()) return;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(options.timeout));
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(std::string_view address, const ConnectOptions& options) {
  auto channel = grpc::CreateChannel(std::string(address), grpc::InsecureChannelCredentials());
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

absl::Status Client::Generate(const v1::GenerateRequest& request, const ChunkCallback& on_chunk,
                              const CallOptions& options) {
  grpc::ClientContext context;
  SetDeadline(context, options);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub_->Generate(&context, request);
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
