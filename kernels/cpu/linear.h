// CPU reference: dense linear layer y = x @ w.T in fp32, and its FP8 block-scaled form.
#pragma once

#include <cstdint>

namespace octet::cpu {

// out[t, o] = sum_i x[t, i] * w[o, i]          x [tokens, in], w [out, in], out [tokens, out]
void Linear(const float* x, const float* w, float* out, int64_t tokens, int64_t in, int64_t out_features);

// FP8 block-scaled linear, the semantics of cuBLASLt's block-scaled FP8 GEMM (activations VEC128_32F x weights
// BLK128x128_32F). Inputs quantized as kernels/cpu/fp8.h specifies:
//   xq [tokens, in] E4M3, xs fp32 [tokens, ceil(in/128)]              (QuantizeActivationFp8)
//   wq [out, in] E4M3,    ws fp32 [ceil(out/128), ceil(in/128)]       (QuantizeWeightFp8)
// With dec = Fp8E4M3ToFloat and groups g = 128-wide slices of `in` (the last one ragged):
//   P(t, o, g) = sum_{i in g} dec(xq[t, i]) * dec(wq[o, i]), computed EXACTLY and then rounded once to fp32
//                (each product is a multiple of 2^-18 below 2^18 in magnitude, so a group's sum is a multiple of
//                2^-18 below 2^25: it fits a double's 53-bit significand and any summation order gives it exactly)
//   acc = 0.0f; for g = 0, 1, ... in ascending order:  acc = acc + P(t, o, g) * (xs[t, g] * ws[o / 128, g])
//                (fp32, each *, + rounded separately to nearest even, no FMA)
//   out[t, o] = acc
void LinearFp8(const uint8_t* xq, const float* xs, const uint8_t* wq, const float* ws, float* out, int64_t tokens,
               int64_t in, int64_t out_features);

}  // namespace octet::cpu
