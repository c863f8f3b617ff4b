// UnaryForwardReactor: forwards one unary call (Tokenize, GetModelInfo) to a worker and returns its answer.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "octet/v1/generation.grpc.pb.h"
#include "router/forwarding.h"

namespace octet::router {

// Same rules as Generate: the client's deadline and cancellation reach the worker call, the worker's status is
// the client's status, and a worker failure (down, broken or full) is retried on another worker, up to
// max_attempts in all. Client errors pass through and never count against a worker.
// Deletes itself when the client call is done and no worker call is running.
template <typename Request, typename Response>
class UnaryForwardReactor final : public grpc::ServerUnaryReactor {
 public:
  // Issues the call on a worker, e.g. stub->async()->Tokenize(context, request, response, std::move(done)).
  using Invoke = void (*)(v1::Generation::Stub* stub, grpc::ClientContext* context, const Request* request,
                          Response* response, std::function<void(grpc::Status)> done);

  UnaryForwardReactor(Forwarding forwarding, grpc::CallbackServerContext* context, const Request* request,
                      Response* response, Invoke invoke)
      : forwarding_(forwarding), context_(context), request_(request), response_(response), invoke_(invoke) {
    forwarding_.inflight->Begin();
    std::optional<size_t> worker;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      absl::StatusOr<size_t> picked = PickWorker(*forwarding_.pool, *forwarding_.policy, RouteRequest{});
      if (picked.ok()) {
        worker = NewAttemptLocked(*picked);
      } else {
        finish = ToGrpcStatus(picked.status());
      }
    }
    if (worker) StartAttempt(*worker);
    if (finish) Finish(*finish);
  }

  void OnCancel() override {
    grpc::ClientContext* attempt = nullptr;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;  // no retry from now on; a retry already made is attempts_.back()
      if (!attempts_.empty()) attempt = attempts_.back().get();
    }
    // Outside mu_: gRPC may run the worker call's completion inline, and that finishes the client call.
    if (attempt != nullptr) attempt->TryCancel();
  }

  void OnDone() override {
    bool delete_self = false;
    {
      absl::MutexLock lock(&mu_);
      delete_self = !call_running_;
    }
    if (delete_self) delete this;
  }

 private:
  ~UnaryForwardReactor() override { forwarding_.inflight->End(); }

  size_t NewAttemptLocked(size_t worker) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(context_->deadline());
    attempts_.push_back(std::move(context));
    tried_workers_.push_back(worker);
    call_running_ = true;
    forwarding_.pool->OnCallStart(worker, /*estimated_tokens=*/0);
    return worker;
  }

  void StartAttempt(size_t worker) {
    grpc::ClientContext* context = nullptr;
    {
      absl::MutexLock lock(&mu_);
      context = attempts_.back().get();
    }
    invoke_(forwarding_.pool->stub(worker), context, request_, response_,
            [this, worker](grpc::Status status) { OnWorkerDone(worker, std::move(status)); });
  }

  void OnWorkerDone(size_t worker, grpc::Status status) {
    std::optional<size_t> retry;
    {
      absl::MutexLock lock(&mu_);
      call_running_ = false;
      const CallOutcome outcome = ClassifyCall(status, cancelled_);
      forwarding_.pool->OnCallEnd(worker, /*estimated_tokens=*/0, outcome);
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        forwarding_.pool->ReportUnavailable(worker, status.error_message());
      }
      if (RetryElsewhere(outcome) && !cancelled_ && static_cast<int>(attempts_.size()) < forwarding_.max_attempts) {
        absl::StatusOr<size_t> next =
            PickWorker(*forwarding_.pool, *forwarding_.policy, RouteRequest{}, tried_workers_);
        if (next.ok()) {
          OCTET_LOG(WARNING, "router") << "worker " << forwarding_.pool->address(worker) << " failed ("
                                       << status.error_message() << "); retrying on "
                                       << forwarding_.pool->address(*next);
          if (forwarding_.observer) forwarding_.observer->OnRetry(status.error_code());
          retry = NewAttemptLocked(*next);
        }
      }
    }
    if (retry) {
      StartAttempt(*retry);
    } else {
      Finish(status);  // last: OnDone may follow and delete this reactor
    }
  }

  const Forwarding forwarding_;
  grpc::CallbackServerContext* const context_;
  const Request* const request_;  // owned by gRPC, valid until OnDone (which waits for Finish)
  Response* const response_;
  const Invoke invoke_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<grpc::ClientContext>> attempts_ ABSL_GUARDED_BY(mu_);  // kept until deletion
  std::vector<size_t> tried_workers_ ABSL_GUARDED_BY(mu_);
  bool call_running_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace octet::router
