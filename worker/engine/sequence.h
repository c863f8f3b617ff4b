// Sequence: one request as the engine sees it — its tokens, KV blocks and progress. The only type passed between
// scheduler, block manager and model runner.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "worker/engine/sampling_params.h"

namespace octet {

class OutputSink;  // where the engine delivers this sequence's outputs (engine/output_sink.h)

enum class SequenceStatus { kWaiting, kRunning, kFinished };

class Sequence {
 public:
  Sequence(int64_t seq_id, std::string request_id, std::vector<int32_t> prompt_token_ids, SamplingParams sampling)
      : seq_id_(seq_id),
        request_id_(std::move(request_id)),
        token_ids_(std::move(prompt_token_ids)),
        num_prompt_tokens_(static_cast<int32_t>(token_ids_.size())),
        sampling_(std::move(sampling)),
        rng_(sampling_.seed) {}

  int64_t seq_id() const { return seq_id_; }
  // Scheduling priority: lower values are admitted first and preempted last (0 by default; FCFS among equals).
  int32_t priority() const { return priority_; }
  void set_priority(int32_t p) { priority_ = p; }
  // When the request was submitted (for queue time and latency metrics).
  std::chrono::steady_clock::time_point arrival() const { return arrival_; }
  void set_arrival(std::chrono::steady_clock::time_point t) { arrival_ = t; }
  // When the caller stops waiting: past it, the engine ends the request with DEADLINE_EXCEEDED and frees its
  // memory (time_point::max() = no deadline).
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }
  void set_deadline(std::chrono::steady_clock::time_point t) { deadline_ = t; }
  const std::string& request_id() const { return request_id_; }
  const SamplingParams& sampling() const { return sampling_; }
  std::mt19937_64& rng() { return rng_; }

  // All tokens: prompt then generated.
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  int32_t num_tokens() const { return static_cast<int32_t>(token_ids_.size()); }
  int32_t num_prompt_tokens() const { return num_prompt_tokens_; }
  int32_t num_completion_tokens() const { return num_tokens() - num_prompt_tokens_; }
  int32_t last_token() const { return token_ids_.back(); }
  void AppendToken(int32_t token) { token_ids_.push_back(token); }

  // Tokens whose keys and values are already in the KV cache; the next forward starts here.
  int32_t num_cached_tokens() const { return num_cached_tokens_; }
  void set_num_cached_tokens(int32_t n) { num_cached_tokens_ = n; }

  // Physical KV block ids, in order: token i lives in block_table[i / block_size] at slot i % block_size.
  std::vector<int32_t>& block_table() { return block_table_; }
  const std::vector<int32_t>& block_table() const { return block_table_; }
  int32_t NumBlocksNeeded(int32_t num_tokens, int32_t block_size) const {
    return (num_tokens + block_size - 1) / block_size;
  }

  // Prefix-cache chain hashes of its leading full blocks (BlockManager), in order; at most one a block it holds.
  std::vector<uint64_t>& block_hashes() { return block_hashes_; }
  const std::vector<uint64_t>& block_hashes() const { return block_hashes_; }

  // Recurrent-state slot of a hybrid model's sequence while it runs; -1 when it holds none.
  int32_t state_slot() const { return state_slot_; }
  void set_state_slot(int32_t slot) { state_slot_ = slot; }

  SequenceStatus status() const { return status_; }
  void set_status(SequenceStatus s) { status_ = s; }

  // Set by the server when it submits the request; the engine writes outputs through it.
  std::shared_ptr<OutputSink> sink;

 private:
  int64_t seq_id_;
  std::string request_id_;
  std::vector<int32_t> token_ids_;
  int32_t num_prompt_tokens_;
  int32_t num_cached_tokens_ = 0;
  std::vector<int32_t> block_table_;
  std::vector<uint64_t> block_hashes_;
  int32_t state_slot_ = -1;
  SequenceStatus status_ = SequenceStatus::kWaiting;
  SamplingParams sampling_;
  std::mt19937_64 rng_;
  std::chrono::steady_clock::time_point arrival_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  int32_t priority_ = 0;
};

}  // namespace octet
