#include "worker/engine/scheduler.h"

#include <algorithm>

#include "base/log.h"

namespace octet {

void Scheduler::Add(Sequence* seq) {
  const int32_t p = seq->priority();
  waiting_.insert(std::find_if(waiting_.begin(), waiting_.end(), [p](const Sequence* s) { return s->priority() > p; }),
                  seq);
}

std::vector<ScheduledSequence> Scheduler::Schedule() {
  std::vector<ScheduledSequence> batch;
  int32_t token_budget = config_.max_num_batched_tokens;

  // Running sequences first: decodes (1 token) and unfinished prefills (the next chunk).
  for (size_t i = 0; i < running_.size() && token_budget > 0;) {
    Sequence* seq = running_[i];
    const int32_t remaining = seq->num_tokens() - seq->num_cached_tokens();
    const int32_t n = std::min(remaining, token_budget);
    // Make room by preempting the newest sequences, possibly this one.
    while (!block_manager_.CanAppend(*seq, n) && running_.back() != seq) Preempt(running_.back());
    if (!block_manager_.CanAppend(*seq, n)) {
      Preempt(seq);  // it was the newest: it waits until memory frees up
      break;
    }
    block_manager_.Append(*seq, n);
    batch.push_back({seq, n, seq->num_cached_tokens() + n == seq->num_tokens()});
    token_budget -= n;
    ++i;
  }

  // Then admit waiting sequences in arrival order while there is room.
  while (!waiting_.empty() && token_budget > 0 && static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    const int32_t hit = block_manager_.AttachCachedPrefix(*seq);  // its KV is already there: skip those tokens
    const int32_t remaining = seq->num_tokens() - seq->num_cached_tokens();
    const int32_t n = std::min(remaining, token_budget);
    if (!block_manager_.CanAppend(*seq, n)) {  // keep arrival order: no overtaking
      if (hit > 0) block_manager_.Deallocate(*seq);
      break;
    }
    if (state_slots_ != nullptr) {
      const std::optional<int32_t> slot = state_slots_->Acquire();
      if (!slot) {
        if (hit > 0) block_manager_.Deallocate(*seq);
        break;
      }
      seq->set_state_slot(*slot);
    }
    if (block_manager_.prefix_caching()) {
      prefix_query_tokens_ += seq->num_tokens();
      prefix_hit_tokens_ += hit;
    }
    waiting_.pop_front();
    block_manager_.Append(*seq, n);
    seq->set_status(SequenceStatus::kRunning);
    const int32_t p = seq->priority();
    running_.insert(
        std::find_if(running_.begin(), running_.end(), [p](const Sequence* s) { return s->priority() > p; }), seq);
    batch.push_back({seq, n, seq->num_cached_tokens() + n == seq->num_tokens()});
    token_budget -= n;
  }
  return batch;
}

void Scheduler::Preempt(Sequence* seq) {
  OCTET_LOG(DEBUG, "scheduler") << "preempting " << seq->request_id() << " (" << seq->num_tokens() << " tokens)";
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  block_manager_.Deallocate(*seq);  // also resets num_cached_tokens: recomputed on readmission
  ReleaseStateSlot(seq);
  seq->set_status(SequenceStatus::kWaiting);
  const int32_t p = seq->priority();
  waiting_.insert(std::find_if(waiting_.begin(), waiting_.end(), [p](const Sequence* s) { return s->priority() >= p; }),
                  seq);
  ++num_preemptions_;
}

void Scheduler::Finish(Sequence* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) running_.erase(it);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), seq); it != waiting_.end()) waiting_.erase(it);
  if (!seq->block_table().empty()) block_manager_.Deallocate(*seq);
  ReleaseStateSlot(seq);
  seq->set_status(SequenceStatus::kFinished);
}

void Scheduler::ReleaseStateSlot(Sequence* seq) {
  if (state_slots_ != nullptr && seq->state_slot() >= 0) {
    state_slots_->Release(seq->state_slot());
    seq->set_state_slot(-1);
  }
}

}  // namespace octet
