#include "router/generate_reactor.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace octet::router {
namespace {

// "request 'id'" for logs; requests without an id get theirs from the worker.
std::string RequestLabel(const v1::GenerateRequest& request) {
  return request.request_id().empty() ? "request" : "request '" + request.request_id() + "'";
}

}  // namespace

// The call to one worker. Its state is guarded by the parent's mu_; its reactions go straight to the parent.
class GenerateReactor::WorkerCall final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  WorkerCall(GenerateReactor* owner, size_t worker_index, std::chrono::system_clock::time_point deadline)
      : parent(owner), worker(worker_index) {
    // time_point::max() (the client set no deadline) becomes an infinite deadline.
    context.set_deadline(deadline);
  }

  // Starts the call with its first read posted. Called without the parent's mu_.
  void Start(v1::Generation::Stub* stub, const v1::GenerateRequest& request) {
    stub->async()->Generate(&context, &request, this);
    // A read paused by a full queue is resumed from the client call's OnWriteDone, outside this call's own
    // reactions, so the call must not finish (and run OnDone) while paused: the hold keeps it open.
    AddHold();
    StartRead(&message);
    StartCall();
  }

  void Cancel() { context.TryCancel(); }

  void OnReadDone(bool ok) override { parent->OnWorkerReadDone(this, ok); }
  void OnDone(const grpc::Status& status) override { parent->OnWorkerDone(this, status); }

  GenerateReactor* const parent;
  const size_t worker;
  grpc::ClientContext context;
  v1::GenerateResponse message;  // the read target, owned by gRPC while read_in_flight

  // Guarded by parent->mu_.
  bool read_in_flight = true;
  bool hold = true;
  bool ended = false;  // the worker's stream has no more messages
  bool done = false;   // OnDone seen
};

GenerateReactor::GenerateReactor(Forwarding forwarding, grpc::CallbackServerContext* context,
                                 const v1::GenerateRequest* request)
    : forwarding_(forwarding),
      context_(context),
      request_(*request),
      route_(DescribeRequest(*request, forwarding.prefix_tokens)) {
  admitted_ = forwarding_.inflight->TryBegin(forwarding_.max_inflight);
  WorkerCall* start = nullptr;
  std::optional<grpc::Status> finish;
  {
    absl::MutexLock lock(&mu_);
    if (!admitted_) {
      if (forwarding_.observer) forwarding_.observer->OnRejected();
      final_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                   "the router is at its bound of " + std::to_string(forwarding_.max_inflight) +
                                       " requests in flight (--max-inflight-requests)");
    } else {
      start = StartAttemptLocked();
    }
    if (start == nullptr) {
      finish_called_ = true;
      finish = EndWithLocked(*final_status_);
    }
  }
  if (start != nullptr) start->Start(forwarding_.pool->stub(start->worker), request_);
  if (finish) Finish(*finish);
}

GenerateReactor::~GenerateReactor() {
  if (forwarding_.observer) {
    absl::MutexLock lock(&mu_);  // nothing else runs any more; the lock only documents the guarded reads
    const std::string worker = tried_workers_.empty() ? "" : forwarding_.pool->address(tried_workers_.back());
    forwarding_.observer->OnRequestEnd(
        worker, end_code_, std::chrono::duration<double>(std::chrono::steady_clock::now() - arrival_).count(),
        failed_after_first_message_);
  }
  if (admitted_) forwarding_.inflight->End();
}

grpc::Status GenerateReactor::EndWithLocked(grpc::Status status) {
  end_code_ = status.error_code();
  return status;
}

GenerateReactor::WorkerCall* GenerateReactor::StartAttemptLocked() {
  absl::StatusOr<size_t> worker = PickWorker(*forwarding_.pool, *forwarding_.policy, route_, tried_workers_);
  if (!worker.ok()) {
    final_status_ = ToGrpcStatus(worker.status());
    return nullptr;
  }
  OCTET_LOG(DEBUG, "router") << RequestLabel(request_) << " -> worker " << forwarding_.pool->address(*worker);
  tried_workers_.push_back(*worker);
  forwarding_.pool->OnCallStart(*worker, route_.estimated_tokens);
  if (forwarding_.observer)
    forwarding_.observer->OnRouted(forwarding_.policy->name(), forwarding_.pool->address(*worker));
  calls_.push_back(std::make_unique<WorkerCall>(this, *worker, context_->deadline()));
  current_ = calls_.back().get();
  ++running_calls_;
  return current_;
}

bool GenerateReactor::AbandonedLocked(const WorkerCall* call) const {
  return call != current_ || cancelled_ || finish_called_;
}

bool GenerateReactor::TakeHoldLocked(WorkerCall* call) {
  if (!call->hold || call->read_in_flight || !(call->ended || AbandonedLocked(call))) return false;
  call->hold = false;
  return true;
}

bool GenerateReactor::NextWriteLocked() {
  if (writing_ || queue_.empty()) return false;
  write_buffer_ = std::move(queue_.front());
  queue_.pop_front();
  writing_ = true;
  return true;
}

bool GenerateReactor::ResumeReadLocked() {
  WorkerCall* call = current_;
  if (call == nullptr || AbandonedLocked(call) || call->read_in_flight || call->ended || !call->hold ||
      queue_.size() >= kMaxQueuedMessages) {
    return false;
  }
  call->read_in_flight = true;
  return true;
}

void GenerateReactor::OnWorkerReadDone(WorkerCall* call, bool ok) {
  bool start_write = false;
  bool start_read = false;
  bool remove_hold = false;
  {
    absl::MutexLock lock(&mu_);
    call->read_in_flight = false;
    if (!ok) {
      call->ended = true;
    } else if (!AbandonedLocked(call)) {
      if (!received_any_ && forwarding_.observer) {
        forwarding_.observer->OnFirstMessage(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - arrival_).count());
      }
      received_any_ = true;
      queue_.push_back(std::move(call->message));
      call->message.Clear();
      start_write = NextWriteLocked();
      if (queue_.size() < kMaxQueuedMessages) {
        call->read_in_flight = true;
        start_read = true;
      }
    }
    remove_hold = TakeHoldLocked(call);
  }
  if (start_write) StartWrite(&write_buffer_);
  if (start_read) call->StartRead(&call->message);
  if (remove_hold) call->RemoveHold();  // last: the call's OnDone may follow and delete this reactor
}

void GenerateReactor::OnWorkerDone(WorkerCall* call, const grpc::Status& status) {
  WorkerCall* retry = nullptr;
  std::optional<grpc::Status> finish;
  bool delete_self = false;
  {
    absl::MutexLock lock(&mu_);
    call->done = true;
    --running_calls_;
    const CallOutcome outcome = ClassifyCall(status, cancelled_);
    forwarding_.pool->OnCallEnd(call->worker, route_.estimated_tokens, outcome);
    if (!AbandonedLocked(call)) {
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        forwarding_.pool->ReportUnavailable(call->worker, status.error_message());
      }
      const std::string& address = forwarding_.pool->address(call->worker);
      if (RetryElsewhere(outcome) && !received_any_ && static_cast<int>(calls_.size()) < forwarding_.max_attempts) {
        retry = StartAttemptLocked();
        OCTET_LOG(WARNING, "router") << RequestLabel(request_) << ": worker " << address
                                     << " failed before its first message ("
                                     << absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()))
                                     << ": " << status.error_message() << "); "
                                     << (retry != nullptr ? "retrying on " + forwarding_.pool->address(retry->worker)
                                                          : std::string("no other healthy worker to retry on"));
        if (retry == nullptr) {
          final_status_ = status;  // the worker's error says more than "no other worker"
        } else if (forwarding_.observer) {
          forwarding_.observer->OnRetry(status.error_code());
        }
      } else if (RetryElsewhere(outcome) && received_any_) {
        // The client has part of a response that no other worker can continue.
        failed_after_first_message_ = true;
        final_status_ =
            grpc::Status(grpc::StatusCode::UNAVAILABLE,
                         "worker " + address + " failed after the response had started (" +
                             absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())) + ": " +
                             status.error_message() + "); the messages before this status are what it produced");
      } else {
        final_status_ = status;
      }
      if (final_status_ && !writing_) {
        finish_called_ = true;
        finish = EndWithLocked(*final_status_);
      }
    }
    delete_self = client_done_ && running_calls_ == 0;
  }
  if (retry != nullptr) retry->Start(forwarding_.pool->stub(retry->worker), request_);
  if (finish) Finish(*finish);
  if (delete_self) delete this;
}

void GenerateReactor::OnWriteDone(bool ok) {
  WorkerCall* call = nullptr;
  bool cancel_call = false;
  bool start_write = false;
  bool start_read = false;
  bool remove_hold = false;
  std::optional<grpc::Status> finish;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    call = current_;
    if (!ok && !cancelled_) {
      // The client is gone (the write failed); OnCancel may or may not follow.
      cancelled_ = true;
      cancel_call = true;
    }
    if (cancelled_) {
      if (!finish_called_) {
        finish_called_ = true;
        finish = EndWithLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call"));
      }
    } else if (NextWriteLocked()) {
      start_write = true;
      start_read = ResumeReadLocked();
    } else if (final_status_) {
      finish_called_ = true;
      finish = EndWithLocked(*final_status_);
    } else {
      start_read = ResumeReadLocked();
    }
    if (call != nullptr) remove_hold = TakeHoldLocked(call);
  }
  if (cancel_call && call != nullptr) call->Cancel();
  if (start_write) StartWrite(&write_buffer_);
  if (start_read) call->StartRead(&call->message);
  if (remove_hold) call->RemoveHold();
  if (finish) Finish(*finish);  // last: OnDone may follow and delete this reactor
}

void GenerateReactor::OnCancel() {
  WorkerCall* call = nullptr;
  bool remove_hold = false;
  std::optional<grpc::Status> finish;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    call = current_;
    // With a write in flight, OnWriteDone finishes the call.
    if (!finish_called_ && !writing_) {
      finish_called_ = true;
      finish = EndWithLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call"));
    }
    if (call != nullptr) remove_hold = TakeHoldLocked(call);
  }
  if (call != nullptr) {
    OCTET_LOG(DEBUG, "router") << RequestLabel(request_) << " cancelled by the client";
    call->Cancel();
  }
  if (remove_hold) call->RemoveHold();
  if (finish) Finish(*finish);
}

void GenerateReactor::OnDone() {
  WorkerCall* call = nullptr;
  bool remove_hold = false;
  bool delete_self = false;
  {
    absl::MutexLock lock(&mu_);
    client_done_ = true;
    // Every path to Finish has ended or cancelled the worker call; this only makes sure of a paused one. (A call
    // without its hold may run OnDone, and delete this reactor, at any moment: it must not be touched here.)
    if (current_ != nullptr && !current_->done) {
      call = current_;
      remove_hold = TakeHoldLocked(call);
    }
    delete_self = running_calls_ == 0;
  }
  if (remove_hold) {
    call->Cancel();
    call->RemoveHold();
  }
  if (delete_self) delete this;
}

}  // namespace octet::router
