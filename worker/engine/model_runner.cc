#include "worker/engine/model_runner.h"

#include <algorithm>

#include "base/log.h"

namespace octet {

KvCache AllocateKvCache(Backend& backend, const KvCacheSpec& spec, int32_t num_blocks, int32_t block_size,
                        int32_t num_state_slots, DType kv_dtype) {
  KvCache cache;
  cache.num_blocks = num_blocks;
  cache.block_size = block_size;
  cache.dtype = kv_dtype;
  for (int32_t l = 0; l < spec.num_layers; ++l) {
    const Shape shape = {num_blocks, block_size, spec.num_kv_heads, spec.head_dim};
    KvLayer layer{backend.Zeros(kv_dtype, shape), backend.Zeros(kv_dtype, shape), {}, {}};
    if (kv_dtype == DType::kF8E4M3) {
      layer.k_scale = backend.Zeros(DType::kF32, {num_blocks, block_size, spec.num_kv_heads});
      layer.v_scale = backend.Zeros(DType::kF32, {num_blocks, block_size, spec.num_kv_heads});
    }
    cache.layers.push_back(std::move(layer));
  }
  if (spec.num_recurrent_layers > 0) {
    cache.num_state_slots = num_state_slots;
    for (int32_t l = 0; l < spec.num_recurrent_layers; ++l) {
      cache.conv_state.push_back(
          backend.Zeros(backend.compute_dtype(), {num_state_slots, spec.conv_channels, spec.conv_kernel - 1}));
      cache.recurrent_state.push_back(
          backend.Zeros(DType::kF32, {num_state_slots, spec.v_heads, spec.k_dim, spec.v_dim}));
    }
  }
  return cache;
}

ForwardBatch SequenceBatch(Backend& backend, absl::Span<const int32_t> ids, int32_t start,
                           absl::Span<const int32_t> block_table, int32_t block_size, int32_t state_slot) {
  const int32_t n = static_cast<int32_t>(ids.size());
  const int32_t end = start + n;
  const int32_t num_blocks = static_cast<int32_t>(block_table.size());
  OCTET_CHECK(num_blocks * block_size >= end) << "block table too short for " << end << " tokens";
  std::vector<int32_t> positions(n), slots(n), rows(n);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t p = start + i;
    positions[i] = p;
    slots[i] = block_table[p / block_size] * block_size + p % block_size;
    rows[i] = i;
  }
  const std::vector<int32_t> query_start = {0, n}, context_lens = {end}, state_slots = {state_slot};
  ForwardBatch fb;
  fb.input_ids = backend.Upload(DType::kI32, ids.data(), {n});
  fb.positions = backend.Upload(DType::kI32, positions.data(), {n});
  fb.attention.num_seqs = 1;
  fb.attention.max_query_len = n;
  fb.attention.max_context_len = end;
  fb.attention.block_size = block_size;
  fb.attention.query_start = backend.Upload(DType::kI32, query_start.data(), {2});
  fb.attention.context_lens = backend.Upload(DType::kI32, context_lens.data(), {1});
  fb.attention.block_tables = backend.Upload(DType::kI32, block_table.data(), {1, num_blocks});
  fb.attention.slot_mapping = backend.Upload(DType::kI32, slots.data(), {n});
  fb.attention.state_slots = backend.Upload(DType::kI32, state_slots.data(), {1});
  fb.logit_rows = backend.Upload(DType::kI32, rows.data(), {n});
  return fb;
}

std::vector<int32_t> ModelRunner::CaptureDecodeGraphs(const DecodeGraphsConfig& config) {
  graphs_ = DecodeGraphs::Capture(model_, backend_, cache_, config);
  return graphs_ ? graphs_->batch_sizes() : std::vector<int32_t>{};
}

Tensor ModelRunner::RunDecodeGraph(const std::vector<ScheduledSequence>& batch) {
  if (!graphs_) return {};
  const int32_t block_size = cache_.block_size;
  int32_t max_context_len = 0;
  std::vector<DecodeRow> rows;
  rows.reserve(batch.size());
  for (const ScheduledSequence& s : batch) {
    const Sequence& seq = *s.seq;
    if (s.num_new_tokens != 1 || !s.sample) return {};
    const int32_t p = seq.num_cached_tokens();
    OCTET_CHECK(p < seq.num_tokens() && static_cast<int32_t>(seq.block_table().size()) * block_size > p)
        << "sequence " << seq.request_id() << " scheduled past its tokens or blocks";
    rows.push_back(DecodeRow{seq.token_ids()[p], p, seq.block_table()[p / block_size] * block_size + p % block_size,
                             &seq.block_table(), seq.state_slot()});
    max_context_len = std::max(max_context_len, p + 1);
  }
  if (!graphs_->Covers(static_cast<int32_t>(rows.size()), max_context_len)) return {};
  return graphs_->Replay(rows);
}

StepOutput ModelRunner::Finish(const std::vector<ScheduledSequence>& batch, const Tensor& logits) {
  StepOutput out;
  std::vector<TokenSampling> rows;
  bool device = backend_.CanSampleTokens();
  for (const ScheduledSequence& s : batch) {
    if (!s.sample) continue;
    if (s.seq->sampling().logprobs > 0) device = false;
  }
  if (device) {
    for (const ScheduledSequence& s : batch) {
      if (!s.sample) continue;
      const SamplingParams& p = s.seq->sampling();
      TokenSampling row{p.temperature, p.top_k, p.top_p, 0};
      if (!p.greedy()) row.seed = s.seq->rng()();
      rows.push_back(row);
    }
    if (rows.empty()) return out;
    out.tokens = backend_.SampleTokens(logits, rows);
    return out;
  }
  out.logits.resize(static_cast<size_t>(logits.numel()));
  backend_.Download(logits, out.logits.data());
  return out;
}

StepOutput ModelRunner::Run(const std::vector<ScheduledSequence>& batch) {
  if (Tensor logits = RunDecodeGraph(batch); logits.defined()) return Finish(batch, logits);
  const int32_t num_seqs = static_cast<int32_t>(batch.size());
  const int32_t block_size = cache_.block_size;
  std::vector<int32_t> input_ids, positions, slot_mapping, query_start{0}, context_lens, logit_rows, state_slots;
  size_t max_blocks = 1;
  int32_t max_query_len = 0, max_context_len = 0;
  for (const ScheduledSequence& s : batch) {
    const Sequence& seq = *s.seq;
    const int32_t begin = seq.num_cached_tokens();
    const int32_t end = begin + s.num_new_tokens;
    OCTET_CHECK(end <= seq.num_tokens() && static_cast<int32_t>(seq.block_table().size()) * block_size >= end)
        << "sequence " << seq.request_id() << " scheduled past its tokens or blocks";
    for (int32_t p = begin; p < end; ++p) {
      input_ids.push_back(seq.token_ids()[p]);
      positions.push_back(p);
      slot_mapping.push_back(seq.block_table()[p / block_size] * block_size + p % block_size);
    }
    query_start.push_back(static_cast<int32_t>(input_ids.size()));
    context_lens.push_back(end);
    state_slots.push_back(seq.state_slot());
    if (s.sample) logit_rows.push_back(static_cast<int32_t>(input_ids.size()) - 1);
    max_blocks = std::max(max_blocks, seq.block_table().size());
    max_query_len = std::max(max_query_len, s.num_new_tokens);
    max_context_len = std::max(max_context_len, end);
  }
  std::vector<int32_t> block_tables(static_cast<size_t>(num_seqs) * max_blocks, 0);
  for (int32_t b = 0; b < num_seqs; ++b) {
    const std::vector<int32_t>& table = batch[b].seq->block_table();
    std::copy(table.begin(), table.end(), block_tables.begin() + static_cast<size_t>(b) * max_blocks);
  }

  const int64_t t = static_cast<int64_t>(input_ids.size());
  ForwardBatch fb;
  fb.input_ids = backend_.Upload(DType::kI32, input_ids.data(), {t});
  fb.positions = backend_.Upload(DType::kI32, positions.data(), {t});
  fb.attention.num_seqs = num_seqs;
  fb.attention.max_query_len = max_query_len;
  fb.attention.max_context_len = max_context_len;
  fb.attention.block_size = block_size;
  fb.attention.query_start = backend_.Upload(DType::kI32, query_start.data(), {num_seqs + 1});
  fb.attention.context_lens = backend_.Upload(DType::kI32, context_lens.data(), {num_seqs});
  fb.attention.block_tables =
      backend_.Upload(DType::kI32, block_tables.data(), {num_seqs, static_cast<int64_t>(max_blocks)});
  fb.attention.slot_mapping = backend_.Upload(DType::kI32, slot_mapping.data(), {t});
  fb.attention.state_slots = backend_.Upload(DType::kI32, state_slots.data(), {num_seqs});
  fb.logit_rows = backend_.Upload(DType::kI32, logit_rows.data(), {static_cast<int64_t>(logit_rows.size())});

  const Tensor device_logits = model_.Forward(fb, cache_);  // [0, vocab] when only prefill chunks ran
  return Finish(batch, device_logits);
}

}  // namespace octet
