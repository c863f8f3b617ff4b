// ModelRunner: turns a scheduled batch into device inputs (ids, positions, paged-attention metadata), runs the
// model, and brings back the logits of the sequences that sample this step.
#pragma once

#include <cstdint>
#include <vector>

#include <memory>
#include <optional>

#include "absl/types/span.h"

#include "worker/engine/decode_graphs.h"
#include "worker/engine/scheduler.h"
#include "worker/model/model.h"
#include "worker/runtime/backend.h"

namespace octet {

// Allocates the paged KV cache (and, for hybrid models, `num_state_slots` recurrent-state slots) on the backend.
// kv_dtype: the compute dtype, kBF16 or kF8E4M3 (with per-token, per-head fp32 scales).
KvCache AllocateKvCache(Backend& backend, const KvCacheSpec& spec, int32_t num_blocks, int32_t block_size,
                        int32_t num_state_slots = 0, DType kv_dtype = DType::kF32);

// One sequence's tokens `ids` at positions [start, start + ids.size()) as a batch that wants the logits of every
// position: its KV goes to `block_table` (blocks of block_size tokens), its recurrent state (hybrid models) to
// `state_slot`; positions before `start` must already be in the cache. For teacher-forced evaluation and tests;
// serving builds its batches in ModelRunner::Run.
ForwardBatch SequenceBatch(Backend& backend, absl::Span<const int32_t> ids, int32_t start,
                           absl::Span<const int32_t> block_table, int32_t block_size, int32_t state_slot);

// One step's result: the tokens the device sampled (one per sampling sequence, in batch order), or, when the backend
// cannot sample or a sequence wants log-probabilities, the logits of those sequences for the host's Sampler.
struct StepOutput {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [sampling sequences, vocab]
};

class ModelRunner {
 public:
  ModelRunner(Model& model, Backend& backend, KvCache cache)
      : model_(model), backend_(backend), cache_(std::move(cache)) {}

  // Runs one step: the sampled tokens, or the logits of the entries with sample = true, in batch order (StepOutput).
  // Steps of decodes only replay a captured graph when one covers them (CaptureDecodeGraphs). Device sampling draws
  // one 64-bit key per sampled token from the sequence's rng (greedy draws none), so seeds repeat.
  StepOutput Run(const std::vector<ScheduledSequence>& batch);
  // Captures decode graphs on this runner's cache (decode_graphs.h); a no-op on backends without graphs. Returns
  // the captured batch sizes.
  std::vector<int32_t> CaptureDecodeGraphs(const DecodeGraphsConfig& config);

  const KvCache& cache() const { return cache_; }
  int32_t vocab_size() const { return model_.vocab_size(); }

 private:
  // The step as one replay when every sequence decodes one token and a graph covers it; its device logits, or an
  // undefined tensor otherwise.
  Tensor RunDecodeGraph(const std::vector<ScheduledSequence>& batch);
  // Samples the device logits of the sampling entries on the device when it can, else brings them to the host.
  StepOutput Finish(const std::vector<ScheduledSequence>& batch, const Tensor& logits);

  Model& model_;
  Backend& backend_;
  KvCache cache_;
  std::unique_ptr<DecodeGraphs> graphs_;  // after cache_: the graphs write into it
};

}  // namespace octet
