// GenerateStream: the server-streaming reactor of one Generate call. The engine thread pushes outputs through a
// StreamSink; the reactor writes them one at a time, never blocking inside a reaction. A client cancel reaches the
// engine at once; the engine's outputs after the call is done are dropped by the sink.
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

class GenerateStream;

// The engine's handle on a stream; outlives the reactor, forgets it when the call is done.
class StreamSink final : public OutputSink {
 public:
  explicit StreamSink(GenerateStream* stream) : stream_(stream) {}
  void Deliver(GenerationOutput output) override;
  void Detach();

 private:
  std::mutex mu_;
  GenerateStream* stream_;  // guarded by mu_; null once the call is done
};

class GenerateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Submits the (validated) request to the engine and starts streaming.
  GenerateStream(Engine& engine, const Tokenizer& tokenizer, EngineRequest request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Called by StreamSink on the engine thread.
  void Push(GenerationOutput output);

 private:
  void WriteNextLocked();
  v1::GenerateResponse ToResponse(GenerationOutput& output) const;

  Engine& engine_;
  const Tokenizer& tokenizer_;
  std::string request_id_;
  std::shared_ptr<StreamSink> sink_;
  int64_t seq_id_ = 0;

  std::mutex mu_;
  std::deque<v1::GenerateResponse> queue_;  // guarded by mu_
  v1::GenerateResponse in_flight_;          // guarded by mu_ while writing_
  bool writing_ = false;                    // guarded by mu_
  bool final_queued_ = false;               // guarded by mu_: the last output has arrived
  bool finish_called_ = false;              // guarded by mu_
  grpc::Status final_status_;               // guarded by mu_
};

// A Generate call rejected before reaching the engine: finishes at once with `status`.
class RejectedStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RejectedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace octet
