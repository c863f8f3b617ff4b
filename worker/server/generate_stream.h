// GenerateStream: the server-streaming reactor of one Generate call. The engine thread delivers outputs to the
// stream's shared state (its OutputSink); the reactor writes them one at a time. Decisions are taken under the
// state's lock, but gRPC is only called with no lock held, since gRPC may run a reaction inline on the calling
// thread. A client cancel reaches the engine at once; outputs that arrive after the call is done are dropped.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "octet/v1/generation.pb.h"
#include "worker/engine/engine.h"
#include "worker/engine/output.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {

class GenerateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Submits the (validated) request to the engine and starts streaming.
  GenerateStream(Engine& engine, const Tokenizer& tokenizer, EngineRequest request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What the stream does next; chosen under the lock, carried out without it.
  enum class Action { kNone, kWrite, kFinish };

  // Shared with the engine, which may deliver after the reactor is gone.
  class State final : public OutputSink {
   public:
    State(GenerateStream* stream, const Tokenizer& tokenizer, std::string request_id)
        : stream_(stream), tokenizer_(tokenizer), request_id_(std::move(request_id)) {}
    void Deliver(GenerationOutput output) override;

    // Called by the reactor's reactions.
    void WriteDone(bool ok);
    void Cancelled();
    void Done();

   private:
    Action NextLocked();
    void Act(Action action);
    v1::GenerateResponse ToResponse(GenerationOutput& output) const;

    std::mutex mu_;
    // Valid until Finish is called: OnDone (and so `delete`) can only follow Finish, and only the thread that
    // decided kFinish calls it.
    GenerateStream* stream_;
    const Tokenizer& tokenizer_;
    const std::string request_id_;
    std::deque<v1::GenerateResponse> queue_;  // guarded by mu_
    v1::GenerateResponse in_flight_;          // owned by the writer while writing_
    bool writing_ = false;                    // guarded by mu_
    bool final_queued_ = false;               // guarded by mu_: the last output has arrived
    bool finish_called_ = false;              // guarded by mu_
    grpc::Status final_status_;               // guarded by mu_
  };

  Engine& engine_;
  std::shared_ptr<State> state_;
  int64_t seq_id_ = 0;
};

// A Generate call rejected before reaching the engine: finishes at once with `status`.
class RejectedStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RejectedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace octet
