// DecodeGraphs: decode steps (every sequence one new token) replayed from graphs captured at a ladder of batch sizes
// (1, 2, 4, 8, 16, ... up to max_batch), so a step costs one launch instead of one per op. A step of n sequences runs
// the smallest graph of >= n rows: the real rows' metadata is copied into the graph's fixed input tensors and the
// rest is padding (token 0 at position 0, a fresh sequence whose KV write is skipped and whose recurrent state goes
// to a slot of its own), whose logits are dropped. Backends without graphs capture nothing and steps run eagerly.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "worker/model/model.h"
#include "worker/runtime/backend.h"

namespace octet {

struct DecodeGraphsConfig {
  int32_t max_batch = 0;
  // Contexts (cached + new tokens) up to this many tokens replay a graph; longer steps run eagerly. The attention
  // kernels size their grids from it, so it trades the longest graphed context against the split-K work of shorter
  // ones.
  int32_t max_context_len = 0;
  // A recurrent-state slot no sequence uses, for the padding rows (hybrid models); -1 without recurrent layers.
  int32_t padding_state_slot = -1;
};

// One decode row of a step: the new token, its position, where its K/V go, its block table and state slot.
struct DecodeRow {
  int32_t token = 0;
  int32_t position = 0;  // = tokens cached before it; the context is position + 1
  int32_t slot = 0;
  const std::vector<int32_t>* block_table = nullptr;
  int32_t state_slot = -1;
};

class DecodeGraphs {
 public:
  // Captures the ladder on `cache` (the graphs write into it when replayed). nullptr when the backend has no graphs.
  static std::unique_ptr<DecodeGraphs> Capture(Model& model, Backend& backend, KvCache& cache,
                                               const DecodeGraphsConfig& config);

  // Whether a step of n rows whose longest context is max_context_len tokens can replay a graph.
  bool Covers(int32_t n, int32_t max_context_len) const;
  // Runs the step; fp32 logits [rows.size(), vocab] on the host, in row order.
  std::vector<float> Run(const std::vector<DecodeRow>& rows);
  // Runs the step and leaves its logits on the device: a view [rows.size(), vocab] of the graph's output, valid until
  // the next replay.
  Tensor Replay(const std::vector<DecodeRow>& rows);

  std::vector<int32_t> batch_sizes() const;

 private:
  struct Graph {
    int32_t batch = 0;
    int32_t id = -1;
    ForwardBatch inputs;  // fixed device tensors the graph reads
    Tensor logits;        // [batch, vocab], written by the graph
  };

  DecodeGraphs(Model& model, Backend& backend, KvCache& cache, const DecodeGraphsConfig& config)
      : model_(model), backend_(backend), cache_(cache), config_(config) {}
  // Fills g.inputs with the host rows (padded to g.batch).
  void Stage(Graph& g, const std::vector<DecodeRow>& rows);

  Model& model_;
  Backend& backend_;
  KvCache& cache_;
  DecodeGraphsConfig config_;
  int32_t table_width_ = 0;    // blocks per row in the fixed block table
  std::vector<Graph> graphs_;  // ascending batch
};

}  // namespace octet
