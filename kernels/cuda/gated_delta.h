// Gated DeltaNet (Qwen3.5's linear attention) on the GPU: the short causal conv, the gates, the gated delta rule and
// the gated output norm, each the numerics of its kernels/cpu reference within a stated tolerance.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

// = cpu::CausalConv1dSilu. x, out fp32 [num_tokens, channels]; w [channels, kernel]; conv_state [slots, channels,
// kernel-1]; query_start [num_seqs+1], context_lens, state_slots [num_seqs] are device int32 (query_start[num_seqs]
// <= num_tokens; tokens past it are left alone). A sequence with context_len == query_len starts from a zero state.
// out must not alias x.
// Two kernels: one thread per (token, channel) computes out from x and the old state, then one thread per (sequence,
// channel) rolls the state. The products and sums are rounded as on the CPU (no FMA), so the pre-activation is bit
// for bit; only expf in the SiLU differs from std::exp (a few ulp): out within ~4e-7 relative per element.
cudaError_t CausalConv1dSilu(const float* x, const float* w, const int32_t* query_start, const int32_t* context_lens,
                             const int32_t* state_slots, int64_t num_seqs, int64_t num_tokens, int64_t channels,
                             int64_t kernel, float* conv_state, float* out, cudaStream_t stream);

// = cpu::GdnGates. a, b, g, beta [tokens, heads]; a_log, dt_bias [heads]. expf/log1pf instead of std::exp/log1p:
// within a few ulp (~1e-6 relative).
cudaError_t GdnGates(const float* a, const float* b, const float* a_log, const float* dt_bias, int64_t tokens,
                     int64_t heads, float* g, float* beta, cudaStream_t stream);

// = cpu::GatedDeltaRule (q/k L2-normalised inside, fp32 state [slots, v_heads, k_dim, v_dim]); k_dim, v_dim <= 256,
// v_heads a multiple of k_heads. max_query_len: host-known bound on a sequence's tokens in this call (unused by
// this recurrent kernel; kept for a chunked prefill path).
// Design: one warp per (sequence, v head, 8 state columns); lane = 8 * row_group + column, each lane holds the rows
// i = row_group + 4 m of its column in registers for the whole call, tokens in order (the next token's inputs are
// loaded while the current one is computed). Each warp normalises q/k itself (no block barriers).
// Numerics vs the CPU: the same operations and roundings per state element (S *= decay, then S^T k, S += k d, S^T q),
// but the sums of squares (q/k norms) and the dot products over k_dim are a per-lane strided sum then a butterfly
// instead of one sequential sum, FMAs are contracted, and exp is expf. A host simulation of both orders (k = v = 128,
// 400 tokens, decays in [0.14, 1], 48 heads) gives output rows within 5e-6 relative L2 (typically 1e-6) and state
// matrices within 2e-7; the tests assert 3e-5 per output row and 1e-5 per state matrix.
cudaError_t GatedDeltaRule(const float* qkv, const float* g, const float* beta, const int32_t* query_start,
                           const int32_t* context_lens, const int32_t* state_slots, int64_t num_seqs,
                           int64_t num_tokens, int32_t max_query_len, int64_t k_heads, int64_t v_heads, int64_t k_dim,
                           int64_t v_dim, float* state, float* out, cudaStream_t stream);

// = cpu::RmsNormGated: out = w * rmsnorm(x) * silu(z) row-wise. out MAY alias x (the caller normalises in place).
// One warp per row; the sum of squares in double like the CPU's (only its order differs), the rest rounded as on the
// CPU; expf in the SiLU: within a few ulp (~5e-7 relative) per element.
cudaError_t RmsNormGated(const float* x, const float* z, const float* w, float* out, int64_t rows, int64_t cols,
                         float eps, cudaStream_t stream);

}  // namespace octet::cuda
