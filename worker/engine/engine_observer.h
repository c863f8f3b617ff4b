// EngineObserver: what the engine tells metrics about, as it happens. Called on the engine thread between steps, so an
// observer must be quick and must not call back into the engine.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "worker/engine/output.h"

namespace octet {

// The engine's gauges after a step (or an idle wake-up).
struct EngineSnapshot {
  int32_t num_running = 0;
  int32_t num_waiting = 0;
  int32_t num_free_blocks = 0;
  int32_t num_cached_free_blocks = 0;  // free blocks still holding a cached prefix's KV
  int32_t num_total_blocks = 0;
  int64_t num_preemptions = 0;      // since start
  int64_t prefix_query_tokens = 0;  // since start: tokens of admitted sequences (prefix caching on)
  int64_t prefix_hit_tokens = 0;    // since start: those of them found in the prefix cache
};

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // A step ran: sequences in it, their prompt (prefill) and generated (decode) tokens, and its wall time.
  virtual void OnStep(int32_t batch_size, int32_t prefill_tokens, int32_t decode_tokens, double seconds) {}
  // After a step: the engine thread's own time in it, outside the model runner (deadlines, scheduling, sampling's
  // bookkeeping, detokenization, delivery, stats).
  virtual void OnHostTime(double seconds) {}
  // A request entered its first step after `queue_seconds` waiting.
  virtual void OnScheduled(double queue_seconds) {}
  // A request's first generated token, `seconds` after it was submitted.
  virtual void OnFirstToken(double seconds) {}
  // A later token, `seconds` after the request's previous one.
  virtual void OnNextToken(double seconds) {}
  // A request ended: why, with what status (OK unless it ended in an error or was cancelled), its token counts,
  // and its time from submission to the end.
  virtual void OnFinish(FinishReason reason, absl::StatusCode status, int32_t prompt_tokens, int32_t completion_tokens,
                        double seconds) {}
  // A request was refused before it was queued (a full queue, a bad request, a worker not serving). Unlike the
  // others, called on whichever thread refused it.
  virtual void OnRejected(absl::StatusCode status) {}
  virtual void OnSnapshot(const EngineSnapshot& snapshot) {}
};

}  // namespace octet
