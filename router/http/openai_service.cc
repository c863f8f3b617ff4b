#include "router/http/openai_service.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/log.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {
namespace {

constexpr absl::string_view kJson = "application/json";
constexpr absl::string_view kEventStream = "text/event-stream";
constexpr absl::string_view kModelsPrefix = "/v1/models/";

// "cmpl-" or "chatcmpl-" and 24 random hex digits.
std::string NewResponseId(Endpoint endpoint) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* bitgen = new absl::BitGen();
  uint64_t high, low;
  {
    absl::MutexLock lock(&mu);
    high = absl::Uniform<uint64_t>(*bitgen);
    low = absl::Uniform<uint64_t>(*bitgen);
  }
  return absl::StrFormat("%s-%08x%016x", endpoint == Endpoint::kCompletions ? "cmpl" : "chatcmpl", high & 0xffffffffu,
                         low);
}

uint32_t NowUnixSeconds() { return static_cast<uint32_t>(absl::ToUnixSeconds(absl::Now())); }

absl::Status NotFoundPath(const HttpRequest& request) {
  return ApiError(absl::StatusCode::kNotFound, 404, "not_found",
                  absl::StrCat("Unknown path: ", request.method, " ", request.path));
}

// Detaches the gRPC call from ActiveCalls when the request ends.
class AttachedCall {
 public:
  AttachedCall(ActiveCalls* calls, grpc::ClientContext* context) : calls_(calls), context_(context) {
    calls_->Attach(context_);
  }
  ~AttachedCall() { calls_->Detach(context_); }
  AttachedCall(const AttachedCall&) = delete;
  AttachedCall& operator=(const AttachedCall&) = delete;

 private:
  ActiveCalls* const calls_;
  grpc::ClientContext* const context_;
};

}  // namespace

void SendError(HttpResponder& responder, const absl::Status& status, const HttpHeaders& headers) {
  RenderedError error = RenderError(status);
  if (error.http_status >= 500) OCTET_LOG(WARNING, "http") << "answering " << error.http_status << ": " << status;
  responder.Send(error.http_status, kJson, error.body, headers);
}

OpenAiService::OpenAiService(std::shared_ptr<grpc::Channel> channel, int64_t max_body_bytes)
    : channel_(std::move(channel)),
      stub_(v1::Generation::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)),
      max_body_bytes_(max_body_bytes),
      catalog_(stub_.get()) {}

void OpenAiService::Handle(const HttpRequest& request, HttpResponder& responder) {
  if (!calls_.Begin()) {
    SendError(responder, absl::UnavailableError("the server is shutting down"));
    return;
  }
  struct EndOnExit {
    ActiveCalls* calls;
    ~EndOnExit() { calls->End(); }
  } end_on_exit{&calls_};

  const std::string& path = request.path;
  absl::string_view allowed;
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    allowed = "POST";
  } else if (path == "/v1/models" || absl::StartsWith(path, kModelsPrefix) || path == "/health") {
    allowed = "GET";
  } else {
    SendError(responder, NotFoundPath(request));
    return;
  }
  if (request.method != allowed) {
    SendError(responder,
              ApiError(absl::StatusCode::kInvalidArgument, 405, "method_not_allowed",
                       absl::StrCat("Method ", request.method, " is not allowed on ", path, "; use ", allowed)),
              {{"Allow", std::string(allowed)}});
    return;
  }
  if (request.body_too_large) {
    SendError(responder, ApiError(absl::StatusCode::kInvalidArgument, 413, "request_too_large",
                                  absl::StrCat("The request body is larger than ", max_body_bytes_,
                                               " bytes (--http-max-body-bytes)")));
    return;
  }
  if (path == "/v1/completions") {
    Completions(request, responder);
  } else if (path == "/v1/chat/completions") {
    ChatCompletions(request, responder);
  } else if (path == "/health") {
    Health(responder);
  } else {
    Models(path, responder);
  }
}

void OpenAiService::Completions(const HttpRequest& request, HttpResponder& responder) {
  absl::StatusOr<openai::v1::CompletionRequest> parsed = ParseCompletionRequest(request.body);
  if (!parsed.ok()) return SendError(responder, parsed.status());
  absl::StatusOr<v1::ModelInfo> info = catalog_.Info();
  if (!info.ok()) return SendError(responder, info.status());
  if (absl::Status s = CheckModel(parsed->model(), info->model_name()); !s.ok()) return SendError(responder, s);
  absl::StatusOr<GenerationCall> call = MapCompletionRequest(*parsed, NewResponseId(Endpoint::kCompletions));
  if (!call.ok()) return SendError(responder, call.status());
  Generate(*call, Endpoint::kCompletions, info->model_name(), responder);
}

void OpenAiService::ChatCompletions(const HttpRequest& request, HttpResponder& responder) {
  absl::StatusOr<openai::v1::ChatCompletionRequest> parsed = ParseChatCompletionRequest(request.body);
  if (!parsed.ok()) return SendError(responder, parsed.status());
  absl::StatusOr<v1::ModelInfo> info = catalog_.Info();
  if (!info.ok()) return SendError(responder, info.status());
  if (absl::Status s = CheckModel(parsed->model(), info->model_name()); !s.ok()) return SendError(responder, s);
  absl::StatusOr<GenerationCall> call =
      MapChatRequest(*parsed, catalog_.TurnEndTokenId(info->model_name()), NewResponseId(Endpoint::kChatCompletions));
  if (!call.ok()) return SendError(responder, call.status());
  Generate(*call, Endpoint::kChatCompletions, info->model_name(), responder);
}

void OpenAiService::Models(const std::string& path, HttpResponder& responder) {
  absl::StatusOr<v1::ModelInfo> info = catalog_.Info();
  if (!info.ok()) return SendError(responder, info.status());
  if (path == "/v1/models") {
    responder.Send(200, kJson, RenderModelList(*info, NowUnixSeconds()));
    return;
  }
  const absl::string_view id = absl::string_view(path).substr(kModelsPrefix.size());
  if (id != info->model_name()) return SendError(responder, ModelNotFound(id, info->model_name()));
  responder.Send(200, kJson, RenderModel(*info, NowUnixSeconds()));
}

void OpenAiService::Health(HttpResponder& responder) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = health_->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
    responder.Send(200, kJson, R"({"status":"serving"})");
  } else {
    responder.Send(503, kJson, R"({"status":"not_serving"})");
  }
}

void OpenAiService::Generate(const GenerationCall& call, Endpoint endpoint, const std::string& model,
                             HttpResponder& responder) {
  const ResponseHead head{call.request.request_id(), NowUnixSeconds(), model};
  grpc::ClientContext context;
  AttachedCall attached(&calls_, &context);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub_->Generate(&context, call.request);

  std::string text;  // the whole text of a non-streaming call
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  v1::Usage usage;
  bool started = false;      // the stream's head is sent
  bool client_gone = false;  // a write failed: the call is cancelled and the rest of it read and dropped
  auto start_stream = [&] {
    started = true;
    return responder.StartStream(200, kEventStream) &&
           (endpoint != Endpoint::kChatCompletions || responder.Write(SseEvent(RenderChatRoleChunk(head))));
  };
  v1::GenerateResponse message;
  while (reader->Read(&message)) {
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) finish = message.finish_reason();
    if (message.has_usage()) usage = message.usage();
    if (!call.stream) {
      text += message.text();
      continue;
    }
    if (client_gone) continue;
    bool written = started || start_stream();
    if (written && (!message.text().empty() || message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED)) {
      written = responder.Write(SseEvent(RenderChunk(endpoint, head, message.text(), message.finish_reason())));
    }
    if (!written) {
      client_gone = true;
      context.TryCancel();
    }
  }
  const grpc::Status status = reader->Finish();
  if (client_gone) {
    OCTET_LOG(DEBUG, "http") << head.id << ": client gone; generation cancelled";
    return;
  }
  if (!call.stream) {
    if (!status.ok()) return SendError(responder, FromGrpcStatus(status));
    responder.Send(200, kJson, RenderWhole(endpoint, head, text, finish, usage));
    return;
  }
  if (!started) {
    if (!status.ok()) return SendError(responder, FromGrpcStatus(status));
    if (!start_stream()) return;
  }
  if (!status.ok()) {
    responder.Write(SseEvent(RenderError(FromGrpcStatus(status)).body));
  } else if (call.include_usage) {
    responder.Write(SseEvent(RenderUsageChunk(endpoint, head, usage)));
  }
  responder.Write(kSseDone);
  responder.EndStream();
}

}  // namespace octet::router::http
