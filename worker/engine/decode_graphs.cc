#include "worker/engine/decode_graphs.h"

#include <algorithm>

#include "base/log.h"

namespace octet {

std::unique_ptr<DecodeGraphs> DecodeGraphs::Capture(Model& model, Backend& backend, KvCache& cache,
                                                    const DecodeGraphsConfig& config) {
  OCTET_CHECK(config.max_batch >= 1 && config.max_context_len >= 1) << "DecodeGraphs needs a batch and a context";
  std::unique_ptr<DecodeGraphs> graphs(new DecodeGraphs(model, backend, cache, config));
  const int32_t bs = cache.block_size;
  graphs->table_width_ = (config.max_context_len + bs - 1) / bs;
  const int32_t vocab = model.vocab_size();
  std::vector<int32_t> ladder;
  for (int32_t b = 1; b < config.max_batch; b *= 2) ladder.push_back(b);
  ladder.push_back(config.max_batch);
  for (int32_t batch : ladder) {
    Graph g;
    g.batch = batch;
    ForwardBatch& in = g.inputs;
    in.input_ids = backend.Zeros(DType::kI32, {batch});
    in.positions = backend.Zeros(DType::kI32, {batch});
    in.attention.num_seqs = batch;
    in.attention.max_query_len = 1;
    in.attention.max_context_len = config.max_context_len;
    in.attention.block_size = bs;
    in.attention.query_start = backend.Zeros(DType::kI32, {batch + 1});
    in.attention.context_lens = backend.Zeros(DType::kI32, {batch});
    in.attention.block_tables = backend.Zeros(DType::kI32, {batch, graphs->table_width_});
    in.attention.slot_mapping = backend.Zeros(DType::kI32, {batch});
    in.attention.state_slots = backend.Zeros(DType::kI32, {batch});
    in.logit_rows = backend.Zeros(DType::kI32, {batch});
    g.logits = backend.Empty(DType::kF32, {batch, vocab});
    graphs->Stage(g, {});  // all padding
    {
      Tensor warm = model.Forward(in, cache);  // first-call set-up (GEMM plans, memory pool) outside the capture
    }
    backend.Synchronize();
    if (!backend.BeginCapture()) return nullptr;
    {
      Tensor out = model.Forward(in, cache);
      backend.GatherRows(out, in.logit_rows, g.logits);
    }
    g.id = backend.EndCapture();
    graphs->graphs_.push_back(std::move(g));
  }
  backend.Synchronize();
  return graphs;
}

bool DecodeGraphs::Covers(int32_t n, int32_t max_context_len) const {
  return n >= 1 && !graphs_.empty() && n <= graphs_.back().batch && max_context_len <= config_.max_context_len;
}

std::vector<int32_t> DecodeGraphs::batch_sizes() const {
  std::vector<int32_t> sizes;
  for (const Graph& g : graphs_) sizes.push_back(g.batch);
  return sizes;
}

void DecodeGraphs::Stage(Graph& g, const std::vector<DecodeRow>& rows) {
  const int32_t batch = g.batch;
  const int32_t padding_slot = std::max(config_.padding_state_slot, 0);
  std::vector<int32_t> ids(batch, 0), positions(batch, 0), query_start(batch + 1), context_lens(batch, 1),
      slots(batch, -1), state_slots(batch, padding_slot), logit_rows(batch);
  std::vector<int32_t> tables(static_cast<size_t>(batch) * table_width_, 0);
  for (int32_t b = 0; b <= batch; ++b) query_start[b] = b;
  for (int32_t b = 0; b < batch; ++b) logit_rows[b] = b;
  for (size_t b = 0; b < rows.size(); ++b) {
    const DecodeRow& r = rows[b];
    ids[b] = r.token;
    positions[b] = r.position;
    context_lens[b] = r.position + 1;
    slots[b] = r.slot;
    state_slots[b] = r.state_slot;
    const size_t n = std::min(r.block_table->size(), static_cast<size_t>(table_width_));
    std::copy(r.block_table->begin(), r.block_table->begin() + n, tables.begin() + b * table_width_);
  }
  ForwardBatch& in = g.inputs;
  backend_.CopyFromHost(ids.data(), in.input_ids);
  backend_.CopyFromHost(positions.data(), in.positions);
  backend_.CopyFromHost(query_start.data(), in.attention.query_start);
  backend_.CopyFromHost(context_lens.data(), in.attention.context_lens);
  backend_.CopyFromHost(tables.data(), in.attention.block_tables);
  backend_.CopyFromHost(slots.data(), in.attention.slot_mapping);
  backend_.CopyFromHost(state_slots.data(), in.attention.state_slots);
  backend_.CopyFromHost(logit_rows.data(), in.logit_rows);
}

Tensor DecodeGraphs::Replay(const std::vector<DecodeRow>& rows) {
  const int32_t n = static_cast<int32_t>(rows.size());
  auto it = std::find_if(graphs_.begin(), graphs_.end(), [n](const Graph& g) { return g.batch >= n; });
  OCTET_CHECK(it != graphs_.end()) << "no decode graph holds " << n << " rows";
  Stage(*it, rows);
  backend_.ReplayGraph(it->id);
  return it->logits.Rows(0, n);
}

std::vector<float> DecodeGraphs::Run(const std::vector<DecodeRow>& rows) {
  const Tensor logits = Replay(rows);
  std::vector<float> host(static_cast<size_t>(logits.numel()));
  backend_.Download(logits, host.data());
  return host;
}

}  // namespace octet
