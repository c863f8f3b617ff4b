// Engine: the one thread that owns scheduler, block manager and model runner. Requests come in from any thread
// through Submit/Cancel; every step the engine schedules a batch, runs it, samples, and delivers each request's
// new text to its OutputSink.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "worker/engine/block_manager.h"
#include "worker/engine/engine_observer.h"
#include "worker/engine/model_runner.h"
#include "worker/engine/output.h"
#include "worker/engine/sampler.h"
#include "worker/engine/scheduler.h"
#include "worker/engine/sequence.h"
#include "worker/engine/state_slot_pool.h"
#include "worker/engine/text_stream.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {

struct EngineConfig {
  SchedulerConfig scheduler;
  int32_t num_kv_blocks = 0;
  int32_t block_size = 16;
  int32_t max_model_len = 0;    // prompt + completion tokens per sequence
  int32_t num_state_slots = 0;  // hybrid models: recurrent-state slots (0 for attention-only models)
  // Reuse the KV blocks of cached prompt prefixes (BlockManager). Only for attention-only models: a hybrid model's
  // recurrent layers keep one running state per sequence, not per block, so a cached prefix's attention KV alone
  // cannot resume it; the engine refuses the combination.
  bool enable_prefix_caching = false;
  std::vector<int32_t> eos_token_ids;  // the model's end-of-sequence tokens
  // Requests accepted but not yet running, at most (0 = no bound); one more ends at once with kError and a
  // RESOURCE_EXHAUSTED status, so an overloaded worker says so instead of letting callers hang.
  int32_t max_queued_requests = 0;
};

struct EngineRequest {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  SamplingParams sampling;
  std::shared_ptr<OutputSink> sink;
  int32_t priority = 0;  // lower first (Scheduler)
  // Past it the request ends with kError and DEADLINE_EXCEEDED, waiting or running (checked every step).
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Counters read by health checks and metrics from other threads.
struct EngineStats {
  std::atomic<int32_t> num_running{0};
  std::atomic<int32_t> num_waiting{0};
  std::atomic<int32_t> num_free_blocks{0};
  std::atomic<int64_t> num_steps{0};
  std::atomic<int64_t> num_preemptions{0};
  std::atomic<int64_t> num_unfinished{0};        // accepted and not yet delivered their final output
  std::atomic<int64_t> num_tokens_in_flight{0};  // prompt + generated tokens of the scheduler's sequences
  std::atomic<int64_t> prefix_query_tokens{0};   // prefix caching: tokens of admitted sequences, since start
  std::atomic<int64_t> prefix_hit_tokens{0};     // of them, found in the prefix cache
};

class Engine {
 public:
  Engine(const EngineConfig& config, ModelRunner& runner, const Tokenizer& tokenizer);
  ~Engine();  // stops the thread; unfinished requests get FINISH_REASON_CANCELLED

  // Before Start: where step, token and request events go (metrics). Not owned; must outlive the engine.
  void set_observer(EngineObserver* observer) { observer_ = observer; }
  void Start();
  void Stop();

  // Thread-safe. Queues a request; its outputs go to request.sink. Returns the id to cancel it with.
  int64_t Submit(EngineRequest request);
  // Thread-safe. The request finishes with kCancelled within one step and its KV blocks are freed.
  void Cancel(int64_t seq_id);

  const EngineConfig& config() const { return config_; }
  const EngineStats& stats() const { return stats_; }
  int32_t num_kv_blocks() const { return block_manager_.num_blocks(); }

 private:
  struct Request {
    std::unique_ptr<Sequence> seq;
    TextStream text;
    bool scheduled = false;                            // has been in a step
    std::chrono::steady_clock::time_point last_token;  // when its latest token came (once it has one)
  };

  void Loop();
  // Moves submitted and cancelled requests in; waits while there is nothing to do. False when stopping.
  bool TakeInbox();
  // Ends the requests whose deadline has passed.
  void ExpireDeadlines();
  void Step();
  // Handles the token just sampled for `request`; returns true if it finished (and was delivered).
  bool ProcessToken(Request& request, SampleResult sample);
  void FinishRequest(int64_t seq_id, GenerationOutput out);
  void PublishStats();

  EngineConfig config_;
  ModelRunner& runner_;
  const Tokenizer& tokenizer_;
  absl::flat_hash_set<int32_t> eos_token_ids_;
  BlockManager block_manager_;
  std::unique_ptr<StateSlotPool> state_slots_;  // null unless the model is hybrid
  Scheduler scheduler_;
  Sampler sampler_;
  absl::flat_hash_map<int64_t, Request> requests_;  // engine thread only
  int64_t num_with_deadline_ = 0;                   // of requests_ (engine thread only)
  EngineStats stats_;
  EngineObserver* observer_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Sequence>> inbox_;  // guarded by mu_
  std::vector<int64_t> cancels_;                  // guarded by mu_
  bool stopping_ = false;                         // guarded by mu_
  int64_t next_seq_id_ = 1;                       // guarded by mu_
  std::thread thread_;
};

}  // namespace octet
