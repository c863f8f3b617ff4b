// Scheduler: continuous batching with chunked prefill. Each step it decides which sequences run and how many of
// their tokens; no device code, no locks (the engine thread owns it).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "worker/engine/block_manager.h"
#include "worker/engine/sequence.h"
#include "worker/engine/state_slot_pool.h"

namespace octet {

struct SchedulerConfig {
  int32_t max_num_seqs = 64;              // sequences running at once
  int32_t max_num_batched_tokens = 2048;  // tokens per step (prefill chunks + decodes)
};

struct ScheduledSequence {
  Sequence* seq;
  int32_t num_new_tokens;  // tokens of this sequence computed this step, from seq->num_cached_tokens()
  bool sample;             // the step reaches the sequence's last token: sample the next one
};

class Scheduler {
 public:
  // state_slots: the recurrent-state slots of a hybrid model (null for attention-only models). A sequence holds
  // one from admission until it finishes or is preempted, so slots bound how many sequences run at once.
  Scheduler(const SchedulerConfig& config, BlockManager& block_manager, StateSlotPool* state_slots = nullptr)
      : config_(config), block_manager_(block_manager), state_slots_(state_slots) {}

  // Queues a sequence behind every waiting one of the same or a better (lower) priority.
  void Add(Sequence* seq);
  // The next step's batch; empty when nothing can run. Running sequences go first (they hold memory), then
  // waiting ones are admitted in priority order, arrival order among equals, while tokens, sequence slots and KV
  // blocks allow; with prefix caching, an admitted sequence starts after its longest cached prefix. When a running
  // sequence cannot get a block, the worst-priority, most recently admitted one is preempted (its blocks freed; it is
  // recomputed from the start when readmitted, ahead of its priority's queue).
  std::vector<ScheduledSequence> Schedule();
  // Removes a finished (or cancelled) sequence from the queues and frees its blocks.
  void Finish(Sequence* seq);

  bool empty() const { return waiting_.empty() && running_.empty(); }
  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  // Prefix caching: tokens of the sequences admitted so far, and how many of them were found in the cache.
  int64_t prefix_query_tokens() const { return prefix_query_tokens_; }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }

 private:
  void Preempt(Sequence* seq);
  void ReleaseStateSlot(Sequence* seq);

  SchedulerConfig config_;
  BlockManager& block_manager_;
  StateSlotPool* state_slots_;
  std::deque<Sequence*> waiting_;
  std::deque<Sequence*> running_;  // by priority, then admission order
  int64_t num_preemptions_ = 0;
  int64_t prefix_query_tokens_ = 0;
  int64_t prefix_hit_tokens_ = 0;
};

}  // namespace octet
