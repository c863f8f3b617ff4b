#include "router/http/model_catalog.h"

#include <grpcpp/grpcpp.h>

#include "router/http/chat_template.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {

ModelCatalog::ModelCatalog(v1::Generation::StubInterface* stub, absl::Duration max_age, absl::Duration call_timeout)
    : stub_(stub), max_age_(max_age), call_timeout_(call_timeout) {}

absl::StatusOr<v1::ModelInfo> ModelCatalog::Info() {
  {
    absl::MutexLock lock(&mu_);
    if (info_ && absl::Now() - info_time_ < max_age_) return *info_;
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + call_timeout_));
  v1::ModelInfo info;
  grpc::Status status = stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) return FromGrpcStatus(status);
  absl::MutexLock lock(&mu_);
  info_ = info;
  info_time_ = absl::Now();
  return info;
}

std::optional<int32_t> ModelCatalog::TurnEndTokenId(const std::string& model_name) {
  {
    absl::MutexLock lock(&mu_);
    if (turn_end_model_ == model_name) return turn_end_id_;
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + call_timeout_));
  v1::TokenizeRequest request;
  request.set_text(std::string(kChatTurnEnd));
  request.set_add_special_tokens(false);
  v1::TokenizeResponse response;
  if (!stub_->Tokenize(&context, request, &response).ok()) return std::nullopt;
  std::optional<int32_t> id;
  if (response.token_ids_size() == 1) id = response.token_ids(0);
  absl::MutexLock lock(&mu_);
  turn_end_model_ = model_name;
  turn_end_id_ = id;
  return id;
}

}  // namespace octet::router::http
