#include "kernels/cpu/fp8.h"

#include <algorithm>
#include <cmath>

namespace octet::cpu {

uint8_t FloatToFp8E4M3(float x) {
  // Integer arithmetic on the fp32 bits: exact, and independent of the host's floating-point rounding mode.
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  const auto sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return kFp8E4M3NaN;                         // NaN, either sign
  if (abs > 0x43E00000u) return static_cast<uint8_t>(sign | 0x7Eu);  // |x| > 448 (0x43E00000), inf included
  const uint32_t exp = abs >> 23;                                    // fp32 biased exponent
  if (exp >= 127 - 6) {
    // |x| >= 2^-6, an E4M3 normal: keep the top 3 of fp32's 23 mantissa bits, rounding the other 20 to nearest
    // even. A carry out of the mantissa correctly bumps the exponent; |x| <= 448 keeps the result <= 0x7E.
    const uint32_t rounded = abs + 0x7FFFFu + ((abs >> 20) & 1u);
    return static_cast<uint8_t>(sign | ((rounded >> 20) - (120u << 3)));  // re-bias 127 -> 7
  }
  // |x| < 2^-6, an E4M3 subnormal m * 2^-9 with m = RNE(|x| * 2^9) in 0..8 (m = 8 is 0x08, the smallest normal).
  // |x| * 2^9 = sig * 2^-(141 - exp) with sig the 24-bit significand; below 2^-10 (exp < 117) it rounds to 0
  // (exactly 2^-10 is a tie and goes to the even 0 too, below).
  if (exp < 117) return sign;
  const uint32_t sig = (abs & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 141 - exp;  // 21 .. 24
  uint32_t m = sig >> shift;
  const uint32_t rest = sig & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (m & 1u) != 0)) ++m;
  return static_cast<uint8_t>(sign | m);
}

float QuantizeGroupFp8(const float* v, int64_t n, uint8_t* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i]));
  const float scale = Fp8Scale(amax);
  for (int64_t i = 0; i < n; ++i) q[i] = FloatToFp8E4M3(v[i] / scale);  // divide: see THE SCALE RULE
  return scale;
}

void QuantizeWeightFp8(const float* w, int64_t out_features, int64_t in, uint8_t* q, float* scales) {
  const int64_t col_blocks = Fp8NumBlocks(in);
  for (int64_t bo = 0; bo < Fp8NumBlocks(out_features); ++bo) {
    const int64_t o0 = bo * kFp8Block, o1 = std::min(o0 + kFp8Block, out_features);
    for (int64_t bi = 0; bi < col_blocks; ++bi) {
      const int64_t i0 = bi * kFp8Block, i1 = std::min(i0 + kFp8Block, in);
      float amax = 0.0f;
      for (int64_t o = o0; o < o1; ++o) {
        for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(w[o * in + i]));
      }
      const float scale = Fp8Scale(amax);
      scales[bo * col_blocks + bi] = scale;
      for (int64_t o = o0; o < o1; ++o) {
        for (int64_t i = i0; i < i1; ++i) q[o * in + i] = FloatToFp8E4M3(w[o * in + i] / scale);
      }
    }
  }
}

void DequantizeWeightFp8(const uint8_t* q, const float* scales, int64_t out_features, int64_t in, float* w) {
  const int64_t col_blocks = Fp8NumBlocks(in);
  for (int64_t o = 0; o < out_features; ++o) {
    const float* row_scales = scales + (o / kFp8Block) * col_blocks;
    for (int64_t i = 0; i < in; ++i) w[o * in + i] = Fp8E4M3ToFloat(q[o * in + i]) * row_scales[i / kFp8Block];
  }
}

void QuantizeActivationFp8(const float* x, int64_t tokens, int64_t in, uint8_t* q, float* scales) {
  const int64_t groups = Fp8NumBlocks(in);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t i0 = g * kFp8Block;
      const int64_t n = std::min(kFp8Block, in - i0);
      scales[t * groups + g] = QuantizeGroupFp8(x + t * in + i0, n, q + t * in + i0);
    }
  }
}

}  // namespace octet::cpu
