// Paged causal attention over an fp32, bf16 or FP8 E4M3 KV cache (cpu::PagedAttention / PagedAttentionBf16 /
// PagedAttentionFp8), for batches that mix decodes and prefill chunks.
//
// Design: a CTA owns one work item (sequence, row tile, key split) of one kv head. A row is one (query token, q head
// of the kv head's GQA group), so the q heads that share a kv head share every key/value load; a tile holds 8 or 16
// consecutive rows of one sequence. The sequence's context is cut into splits of `chunk` keys (a multiple of 32,
// chosen on the host from max_context_len and the batch size so that small batches with long contexts still fill
// the GPU); a CTA walks its split in tiles of 32 keys (dequantized to fp32 in shared memory) with an online softmax
// in fp32 (running max, rescaled sum and accumulator; all products fp32 FMAs, no tensor cores); a tile's values load
// into registers while its scores compute, the next tile's keys while its PV products do. A sequence with one
// split writes `out` directly; otherwise each split writes its partial (max, sum, acc) to the workspace and a reduce
// kernel (one warp per output row, splits in order) merges them. A one-block prologue kernel lays out the work items
// (prefix sum over the sequences), so the grid needs only the host-known bounds (num_tokens, num_seqs,
// max_context_len). Deterministic: the same inputs give the same bits.
//
// Numerics: the same math as the CPU reference (scores = dot(q, k) * scale, softmax with max subtraction, fp8
// values dequantized as one fp32 product code * scale, bf16 widened exactly), but in another summation order and
// with the online-softmax rescaling and expf, so not bit for bit: the tests bound each output row's max abs error by
// tol * max|row of the reference| with tol = 2e-5 * max(1, sqrt(context_len / 1024)) (both sides' fp32 rounding
// grows like sqrt(context); expected errors ~1e-6 relative on short contexts; not yet measured on a GPU).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/kv_cache.h"

namespace octet::cuda {

struct PagedAttentionArgs {
  const float* q = nullptr;       // [num_tokens, q_heads, head_dim]
  const void* k_cache = nullptr;  // [num_blocks, block_size, kv_heads, head_dim] of cache_dtype
  const void* v_cache = nullptr;
  const float* k_scale = nullptr;  // fp8 only: [num_blocks, block_size, kv_heads]
  const float* v_scale = nullptr;
  KvCacheDType cache_dtype = KvCacheDType::kF32;
  const int32_t* query_start = nullptr;   // [num_seqs + 1], device
  const int32_t* context_lens = nullptr;  // [num_seqs], device
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks], device
  int64_t max_blocks = 0, num_seqs = 0, num_tokens = 0, q_heads = 0, kv_heads = 0, head_dim = 0, block_size = 0;
  int32_t max_query_len = 0;  // host-known upper bounds, for grid sizing
  int32_t max_context_len = 0;
  float scale = 1.0f;
  float* out = nullptr;       // [num_tokens, q_heads, head_dim] fp32
  void* workspace = nullptr;  // split-K partials; at least PagedAttentionWorkspaceBytes(args)
  size_t workspace_bytes = 0;
};

// Requirements: head_dim a multiple of 8 in [8, 256]; q_heads a multiple of kv_heads; q, k_cache, v_cache (and the
// workspace) 16-byte aligned; context_lens[b] >= query_len of b; max_query_len >= every query_len and
// max_context_len >= every context_len. Bytes of workspace PagedAttention needs for these args (depends only on
// the host-side fields; > 0 whenever there is work: it also holds the work-item layout).
size_t PagedAttentionWorkspaceBytes(const PagedAttentionArgs& args);

// cudaErrorInvalidValue for bad shapes or too small a workspace.
cudaError_t PagedAttention(const PagedAttentionArgs& args, cudaStream_t stream);

}  // namespace octet::cuda
