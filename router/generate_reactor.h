// GenerateReactor: relays one client Generate call to a worker and streams the worker's messages back.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "octet/v1/generation.grpc.pb.h"
#include "router/forwarding.h"

namespace octet::router {

// One reactor per client call. The worker call is a ClientReadReactor (WorkerCall); every message it reads is
// queued and written to the client, one write in flight at a time. Reading from the worker pauses while
// kMaxQueuedMessages wait for a slow client, so the worker's flow control pushes back instead of router memory.
//
// Failure rules: the client's deadline is the worker call's deadline; a client cancel cancels the worker call;
// a worker's status (error or OK) ends the client's call once the queued messages are written. A worker that fails
// (or is full) before sending anything gets the request retried on another worker, up to max_attempts in all,
// invisibly to the client; one that fails after its response started ends the client's call with UNAVAILABLE
// after what was produced. Client errors (a bad request, the client's deadline, its cancel) are passed on as they
// are and never count against a worker. A request over the router's in-flight bound gets RESOURCE_EXHAUSTED.
//
// Threading: reactions of the client call and of the worker calls run on gRPC threads, possibly concurrently.
// Every decision is taken under mu_; the gRPC operations it implies are started after mu_ is released. The
// reactor deletes itself when the client call is done (OnDone) and no worker call is still running.
class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  static constexpr size_t kMaxQueuedMessages = 64;

  GenerateReactor(Forwarding forwarding, grpc::CallbackServerContext* context, const v1::GenerateRequest* request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class WorkerCall;

  ~GenerateReactor() override;

  // Creates the call to a worker picked by the policy and makes it current_; the caller starts it after releasing
  // mu_. nullptr (and final_status_ set) when no worker is left to try.
  WorkerCall* StartAttemptLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the status the client call ends with (for metrics) and returns it.
  grpc::Status EndWithLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reactions of a WorkerCall.
  void OnWorkerReadDone(WorkerCall* call, bool ok);
  void OnWorkerDone(WorkerCall* call, const grpc::Status& status);

  // True when `call` no longer feeds the client: it was replaced by a retry, or the client call is ending.
  bool AbandonedLocked(const WorkerCall* call) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases `call`'s hold once no read will ever be started on it again; returns true if the caller must then
  // call RemoveHold() (outside mu_).
  bool TakeHoldLocked(WorkerCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the next queued message into write_buffer_ when no write is in flight; true if one must be started.
  bool NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Resumes a read paused by a full queue; true if StartRead must be called on current_.
  bool ResumeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Forwarding forwarding_;
  grpc::CallbackServerContext* const context_;
  const v1::GenerateRequest request_;  // a copy: a retry may start after the client's request buffer is gone
  const RouteRequest route_;
  const std::chrono::steady_clock::time_point arrival_ = std::chrono::steady_clock::now();
  bool admitted_ = false;  // counted in forwarding_.inflight

  absl::Mutex mu_;
  // Every worker call of this request, oldest first; they live until the reactor is deleted.
  std::vector<std::unique_ptr<WorkerCall>> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> tried_workers_ ABSL_GUARDED_BY(mu_);
  WorkerCall* current_ ABSL_GUARDED_BY(mu_) = nullptr;  // the call whose messages go to the client
  int running_calls_ ABSL_GUARDED_BY(mu_) = 0;          // started, OnDone not yet seen
  bool received_any_ ABSL_GUARDED_BY(mu_) = false;      // a worker message was accepted: no more retries

  std::deque<v1::GenerateResponse> queue_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse write_buffer_;  // the message being written; owned by gRPC while writing_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;

  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);  // sent once the queue is written
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;                    // OnCancel, or a write failed
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool client_done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone seen
  grpc::StatusCode end_code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  bool failed_after_first_message_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace octet::router
