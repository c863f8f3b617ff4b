#include "worker/server/generate_stream.h"

#include "base/log.h"

namespace octet {
namespace {

v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return v1::FINISH_REASON_UNSPECIFIED;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

// A token's text for logprob listings: its bytes, with any invalid UTF-8 replaced (protobuf strings must be UTF-8).
std::string TokenText(const Tokenizer& tokenizer, int32_t id) {
  const std::string_view bytes = tokenizer.TokenBytes(id);
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= bytes.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(bytes[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

}  // namespace

GenerateStream::GenerateStream(Engine& engine, const Tokenizer& tokenizer, EngineRequest request)
    : engine_(engine), state_(std::make_shared<State>(this, tokenizer, request.request_id)) {
  request.sink = state_;
  seq_id_ = engine_.Submit(std::move(request));
}

void GenerateStream::OnWriteDone(bool ok) { state_->WriteDone(ok); }

void GenerateStream::OnCancel() {
  engine_.Cancel(seq_id_);  // frees the sequence's KV blocks within one engine step
  state_->Cancelled();
}

void GenerateStream::OnDone() {
  state_->Done();
  engine_.Cancel(seq_id_);  // no-op if it already finished
  delete this;
}

v1::GenerateResponse GenerateStream::State::ToResponse(GenerationOutput& out) const {
  v1::GenerateResponse r;
  r.set_request_id(request_id_);
  r.set_text(std::move(out.text));
  r.mutable_token_ids()->Add(out.token_ids.begin(), out.token_ids.end());
  for (const SampleResult& s : out.logprobs) {
    v1::Logprobs* lp = r.add_logprobs();
    lp->mutable_chosen()->set_token_id(s.token_id);
    lp->mutable_chosen()->set_logprob(s.logprob);
    lp->mutable_chosen()->set_text(TokenText(tokenizer_, s.token_id));
    for (const TokenLogprob& t : s.top) {
      v1::TokenLogprob* top = lp->add_top();
      top->set_token_id(t.token_id);
      top->set_logprob(t.logprob);
      top->set_text(TokenText(tokenizer_, t.token_id));
    }
  }
  r.set_finish_reason(ToProto(out.finish_reason));
  if (out.finish_reason != FinishReason::kNone) {
    r.mutable_usage()->set_prompt_tokens(out.prompt_tokens);
    r.mutable_usage()->set_completion_tokens(out.completion_tokens);
  }
  return r;
}

void GenerateStream::State::Deliver(GenerationOutput output) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (final_queued_ || finish_called_) return;
    const FinishReason finish = output.finish_reason;
    if (finish == FinishReason::kError) {
      final_queued_ = true;
      // absl and gRPC share status codes; an error without one is the worker's own failure.
      const grpc::StatusCode code =
          output.status.ok() ? grpc::StatusCode::INTERNAL : static_cast<grpc::StatusCode>(output.status.code());
      final_status_ = grpc::Status(code, std::string(output.status.message()));
    } else if (finish == FinishReason::kCancelled) {
      final_queued_ = true;
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
    } else {
      queue_.push_back(ToResponse(output));
      final_queued_ = finish != FinishReason::kNone;
    }
    action = NextLocked();
  }
  Act(action);
}

GenerateStream::Action GenerateStream::State::NextLocked() {
  if (writing_ || finish_called_) return Action::kNone;
  if (!queue_.empty()) {
    in_flight_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    return Action::kWrite;
  }
  if (final_queued_) {
    finish_called_ = true;
    return Action::kFinish;
  }
  return Action::kNone;
}

void GenerateStream::State::Act(Action action) {
  // No lock held: gRPC may run the next reaction (which takes mu_) on this thread.
  switch (action) {
    case Action::kNone:
      return;
    case Action::kWrite:
      stream_->StartWrite(&in_flight_);
      return;
    case Action::kFinish:
      stream_->Finish(final_status_);  // final_status_ no longer changes once finish_called_ is set
      return;
  }
}

void GenerateStream::State::WriteDone(bool ok) {
  Action action;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {  // the client is gone
      if (finish_called_) return;
      finish_called_ = true;
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      action = Action::kFinish;
    } else {
      action = NextLocked();
    }
  }
  Act(action);
}

void GenerateStream::State::Cancelled() {
  Action action = Action::kNone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writing_ && !finish_called_) {  // with a write in flight, its failed completion finishes the call
      finish_called_ = true;
      final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
      action = Action::kFinish;
    }
  }
  Act(action);
}

void GenerateStream::State::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  finish_called_ = true;  // late deliveries are dropped
  stream_ = nullptr;
}

}  // namespace octet
