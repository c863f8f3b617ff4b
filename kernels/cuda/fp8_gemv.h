// The skinny FP8 block-scaled GEMM of decode (tokens <= 8): y = cpu::LinearFp8(xq, xs, wq, ws), weights E4M3 in
// 128x128 blocks, activations E4M3 in 1x128 groups, output fp32 or bf16. Memory-bound: it streams the weights once.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace octet::cuda {

inline constexpr int64_t kFp8GemvMaxTokens = 8;

enum class Fp8GemvPath {
  kAuto,        // FMA for one token, tensor core for more
  kTensorCore,  // mma.sync m16n8k16 (E4M3 decoded to f16, f32 accumulate), 16-row tiles; cost flat in tokens
  kFma,         // fp32 FMAs of the decoded products, 1-4 rows per warp; cost grows with tokens
};

// Tuning knobs, for tests and benchmarks; the defaults pick them from the shape and the device (the choices were
// measured on an H200: bench/results/fp8_gemv_h200.json).
struct Fp8GemvOptions {
  Fp8GemvPath path = Fp8GemvPath::kAuto;
  int split = 0;  // warps that share one row tile, splitting K (1, 2, 4 or 8); 0 = chosen by the launcher
  // FMA path at one token, rows a warp and 16-byte loads in flight a lane per row: 1 = 2 rows x 4, 2 = 4 x 2,
  // 3 = 2 x 2, 4 = 1 x 4; 0 = chosen from the shape. Ignored elsewhere.
  int variant = 0;
};

// y [tokens, out_features] = LinearFp8(xq [tokens, in], xs [tokens, ceil(in/128)],
//                                      wq [out_features, in], ws [ceil(out_features/128), ceil(in/128)]).
// 1 <= tokens <= kFp8GemvMaxTokens; any in and out_features (in % 16 == 0 and 16-byte aligned xq and wq take the
// vector path; anything else a slow byte-wise one).
//
// Numerics. Products of E4M3 values are exact (in the tensor core, and in fp32), but a 128-group's sum is not exact
// in fp32, so neither path reproduces LinearFp8's exact group sums bit for bit. Tensor-core path: per group, 8 chained
// MMAs accumulate the 128 products (the MMA's fp32 accumulation), then acc = acc + P * fl(xs * ws) in ascending
// groups, LinearFp8's own cross-group order (split > 1: each warp does this over its groups, then the warps' sums
// are added in order). FMA path: each lane sums the 16 products of one 16-column slice with FMAs in column order,
// scales that partial by fl(xs * ws) into its accumulator with one FMA, then a fixed butterfly over lanes and the
// split warps in order. Both are deterministic (same inputs and options, same bits). Against LinearFp8 each output is
// within (K/128 + K/512 + 40) * 2^-24 * sum_i |dec(xq_i) dec(wq_i)| * fl(xs * ws) (first-order bound of both
// summations, MMA accumulation counted as fp32 rounding), and in practice ~2e-7 in relative L2 norm
// (tests/gpu/fp8_gemv_test.cc).
template <typename OutT>
cudaError_t Fp8Gemv(const uint8_t* xq, const float* xs, const uint8_t* wq, const float* ws, OutT* y, int64_t tokens,
                    int64_t in, int64_t out_features, cudaStream_t stream, const Fp8GemvOptions& options = {});

}  // namespace octet::cuda
