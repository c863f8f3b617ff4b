// Token sampling on the GPU: one token per row of logits, with the semantics of worker/engine/sampler.h (the CPU
// sampler, the reference) but no log-probabilities, so only the token ids cross to the host.
//
// - temperature <= 0 (or NaN): greedy, the first index of the maximum (NaN never chosen; a row with nothing above
//   -inf gives token 0), exactly as the CPU sampler.
// - otherwise: weights w = exp((x - max) / T) (NaN and -inf weigh 0; if some logits are +inf they share all the
//   weight equally; if none is above -inf every token weighs 1), then top-k (0 < k < vocab), then the top-p nucleus
//   of what top-k kept (the heaviest tokens whose weight reaches top_p of the kept mass), then one draw in token-id
//   order with probability w / kept mass from a Philox stream keyed by `seed`.
// Differences from the CPU sampler: tokens tied exactly at the top-k or top-p boundary are all kept (the CPU keeps
// the lowest ids first, to the exact count); the random draws differ (a seed repeats its tokens on the GPU, not across
// devices); sums are in a different order (double here too).
//
// Design: one 1024-thread CTA per row. The weights go to `workspace` once; top-k and top-p thresholds are found by
// bisection over the bits of a positive float (31 block-wide counts or sums each, read from L2); the draw is a block
// prefix scan over contiguous chunks. Greedy rows take one pass.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace octet::cuda {

struct SamplingRow {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;         // 0 (or >= vocab): all tokens
  float top_p = 1.0f;        // >= 1: all tokens
  uint64_t seed = 0;         // the draw's key: one per sampled token
};

// Bytes of device scratch SampleRows needs.
size_t SampleRowsWorkspaceBytes(int64_t rows, int64_t vocab);

// tokens[r] for each row r of logits [rows, vocab] (fp32, device); params [rows] and tokens [rows] on the device.
cudaError_t SampleRows(const float* logits, int64_t rows, int64_t vocab, const SamplingRow* params, int32_t* tokens,
                       void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace octet::cuda
