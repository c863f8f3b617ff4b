// Tensor-core paged causal attention for prefill chunks over a bf16 or FP8 E4M3 KV cache (the math of
// cpu::PagedAttentionBf16 / PagedAttentionFp8 with bf16 tensor-core products), FlashAttention-2 style. Same
// PagedAttentionArgs and semantics as PagedAttention (paged_attention.h); correct for any mix of prefill chunks and
// decodes, but built for long query runs: the caller takes it when PagedAttentionPrefillSupports says so.
//
// Design: a CTA (4 warps) owns 64 rows of one sequence and one kv head; a row is one (query token, q head of the kv
// head's GQA group), as in PagedAttention, so the group's q heads share every key/value load. Each warp owns 16 rows.
// The Q tile is rounded once to bf16 into shared memory (and, for head_dim <= 128, held as mma A fragments in
// registers). The CTA walks the keys 0 .. its last row's causal limit in tiles of 64 keys (32 for head_dim > 128),
// skipping nothing it needs and reading nothing past the limit: the K tile is copied with cp.async (16-byte chunks,
// zero-filled past the sequence and past head_dim) into padded shared memory, S = Q K^T by mma.sync m16n8k16
// (bf16 in, fp32 accumulate; ldmatrix operands), scale, causal mask, online softmax in fp32 (exp2, running max and
// sum per row), P rounded to bf16, O += P V by mma.sync (V through ldmatrix.trans), O in fp32 registers. The V tile
// loads while S computes, the next K tile while P V does. An FP8 cache is copied as codes into a staging buffer and
// widened to bf16 (exact: every E4M3 value is a bf16) in shared memory; its per-(token, kv head) scales are folded
// into the math instead of the operands: score_j = (q . code_j) * k_scale_j * scale, and P's entry for key j is
// p_j * v_scale_j before its bf16 rounding (the softmax sum uses the unscaled p_j). Row tiles are launched latest
// (most keys) first. No split-K and no workspace: a long decode in the batch is one CTA walking its whole context.
// Deterministic.
//
// Numerics and tolerance: against the fp32 CPU reference, two roundings to bf16 (unit roundoff u = 2^-9) dominate,
// the fp32 accumulation and exp2 (~1e-7) are negligible:
//  - q to bf16 perturbs each logit s_j by ~ (u / sqrt(3)) * scale * ||q o k_j||_2 (~1.1e-3 for N(0,1) q, k and
//    scale 1/sqrt(head_dim), growing linearly with the logit magnitude); the output moves by sum_j p_j ds_j (v_j - o),
//    at most ~ p1 p2 |ds1 - ds2| |v1 - v2| per element when two keys dominate (~2e-3 of max|row| for such data).
//  - P to bf16 (p_j or p_j * v_scale_j, each within u relative) moves the output by at most u * max|v| and by
//    ~ u / sqrt(3 * keys) * rms|v| on flat softmaxes.
// The tests bound, per output row, max|out - ref| <= 1e-2 * max|ref row| and, over each test case,
// ||out - ref||_2 <= 5e-3 * ||ref||_2, both multiplied by max(1, logit spread / 2) for peakier softmaxes (random
// data, q scaled by q_mult: the bound grows with the logits, as the analysis says). Expected ~2e-3 and ~1e-3 (not
// yet measured on a GPU).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/paged_attention.h"

namespace octet::cuda {

// Fewest max_query_len for which PagedAttentionPrefillSupports says yes (below it the SIMT kernel's split-K is the
// better schedule for decode-heavy batches).
inline constexpr int32_t kPagedAttentionPrefillMinQueryLen = 64;

// Whether the tensor-core path takes these args: a bf16 or FP8 cache (fp32 stays on PagedAttention), head_dim a
// multiple of 16 in [16, 256] (64, 128 and 256 run without padding), q_heads a multiple of kv_heads, num_seqs <=
// 65535, and max_query_len >= kPagedAttentionPrefillMinQueryLen. Depends only on host-side fields.
bool PagedAttentionPrefillSupports(const PagedAttentionArgs& args);

// Always 0: the path needs no workspace (args.workspace is ignored).
size_t PagedAttentionPrefillWorkspaceBytes(const PagedAttentionArgs& args);

// Requirements as PagedAttention (q, k_cache, v_cache 16-byte aligned; context_lens[b] >= query_len of b;
// max_query_len >= every query_len), plus the shape rules of PagedAttentionPrefillSupports except the
// max_query_len threshold (any batch is computed correctly). cudaErrorInvalidValue for unsupported args.
cudaError_t PagedAttentionPrefill(const PagedAttentionArgs& args, cudaStream_t stream);

}  // namespace octet::cuda
