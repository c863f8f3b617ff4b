#include "worker/server/generation_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "worker/server/generate_stream.h"

namespace octet {
namespace {

const grpc::Status kNotReady(grpc::StatusCode::UNAVAILABLE, "the worker is still loading its model");
const grpc::Status kDraining(grpc::StatusCode::UNAVAILABLE, "the worker is draining: it takes no new requests");

std::string NewRequestId() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat("req-", counter.fetch_add(1) + 1);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* GenerationService::Generate(grpc::CallbackServerContext* context,
                                                                            const v1::GenerateRequest* request) {
  const auto reject = [this](const grpc::Status& status) {
    if (model_.observer != nullptr) model_.observer->OnRejected(static_cast<absl::StatusCode>(status.error_code()));
    return new RejectedStream(status);
  };
  if (!model_.ready.load()) return reject(kNotReady);
  if (model_.draining.load()) return reject(kDraining);
  EngineRequest r;
  r.request_id = request->request_id().empty() ? NewRequestId() : request->request_id();
  bool from_text = false;
  switch (request->input_case()) {
    case v1::GenerateRequest::kPrompt:
      from_text = true;
      if (request->prompt().empty()) {
        return reject(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "`prompt` must not be empty"));
      }
      r.prompt_token_ids = model_.tokenizer->Encode(request->prompt());
      break;
    case v1::GenerateRequest::kPromptTokenIds:
      r.prompt_token_ids.assign(request->prompt_token_ids().ids().begin(), request->prompt_token_ids().ids().end());
      break;
    default:
      return reject(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "one of `prompt` or `prompt_token_ids` is required"));
  }
  if (absl::Status s = ValidatePrompt(r.prompt_token_ids, from_text, model_.limits); !s.ok()) {
    return reject(ToGrpcStatus(s));
  }
  absl::StatusOr<SamplingParams> sampling =
      ValidateSampling(request->sampling(), static_cast<int32_t>(r.prompt_token_ids.size()), model_.limits);
  if (!sampling.ok()) return reject(ToGrpcStatus(sampling.status()));
  r.sampling = *std::move(sampling);
  r.priority = request->priority();
  // The caller's gRPC deadline, on the engine's clock: the engine ends the request there even if it never ran.
  // (No deadline, or one more than a year away, is none: it could overflow the clock arithmetic.)
  if (const auto deadline = context->deadline(); deadline != std::chrono::system_clock::time_point::max()) {
    const auto left =
        std::max(deadline - std::chrono::system_clock::now(), std::chrono::system_clock::duration::zero());
    if (left < std::chrono::hours(24 * 365)) {
      r.deadline =
          std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
    }
  }
  return new GenerateStream(*model_.engine, *model_.tokenizer, std::move(r));
}

grpc::ServerUnaryReactor* GenerationService::Tokenize(grpc::CallbackServerContext* context,
                                                      const v1::TokenizeRequest* request,
                                                      v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!model_.ready.load()) {
    reactor->Finish(kNotReady);
    return reactor;
  }
  const std::vector<int32_t> ids = model_.tokenizer->Encode(request->text());
  response->mutable_token_ids()->Add(ids.begin(), ids.end());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GenerationService::GetModelInfo(grpc::CallbackServerContext* context,
                                                          const v1::GetModelInfoRequest* request,
                                                          v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!model_.ready.load()) {
    reactor->Finish(kNotReady);
    return reactor;
  }
  *response = model_.info;
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace octet
