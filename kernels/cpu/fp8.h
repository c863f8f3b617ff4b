// CPU reference: FP8 E4M3 encoding and the block quantization of weights and activations — the spec of octet's
// FP8 numerics. The CUDA kernels reproduce the codes and scales written here bit for bit.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace octet::cpu {

// FP8 E4M3 as OCP FP8 and PyTorch's float8_e4m3fn define it: 1 sign bit, 4 exponent bits (bias 7), 3 mantissa
// bits, no infinities. Exponent field e = 1..15 encodes (-1)^s * (1 + m/8) * 2^(e-7); e = 0 encodes the subnormals
// (-1)^s * m * 2^-9; S.1111.111 (0x7F, 0xFF) is NaN. Largest finite value 0x7E = 448, smallest positive 0x01 = 2^-9.
//
// THE ROUNDING RULE. FloatToFp8E4M3(x) rounds the fp32 value x once, to the nearest E4M3 value, subnormals
// included and exact (neither fp32 nor E4M3 subnormals are flushed to zero); a tie between two E4M3 values goes to
// the one whose code is even (mantissa bit 0 clear). Any x with |x| > 448, infinities included, becomes +-448 (the
// "satfinite" conversion: nothing finite turns into NaN). NaN of either sign becomes 0x7F. The sign is always
// kept, so -0.0 and negative values that round to zero give 0x80 (-0). This is CUDA's
// __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3), i.e. PTX cvt.rn.satfinite.e4m3x2.f32.
//
// THE SCALE RULE (weights per 128x128 block, activations per token per group of 128 along the input dim, the KV
// cache per token per KV head). Over the group's fp32 values v_i (which must be finite):
//   amax  = max_i |v_i|
//   scale = amax / 448, one IEEE fp32 division rounded to nearest even; if that is 0 (an all-zero group, or one
//           so tiny that amax / 448 underflows to 0), scale = 1, so that nothing divides by zero (an all-zero group
//           then quantizes to zero codes and dequantizes to exact zeros)
//   q_i   = FloatToFp8E4M3(v_i / scale): a correctly rounded fp32 DIVISION (CUDA: __fdiv_rn or `/` without
//           -use_fast_math), NOT a multiplication by a reciprocal 1/scale, which rounds twice and gives other codes.
//           amax / scale may exceed 448 by an fp32 rounding; the saturation brings it back to 448.
//   dequantized value = Fp8E4M3ToFloat(q_i) * scale (scale multiplies: Qwen's `weight_scale_inv` convention).
// No flush-to-zero anywhere; the last group along a dimension not a multiple of 128 is ragged (just shorter).

// Weight blocks are kFp8Block x kFp8Block, activation groups 1 x kFp8Block (backend.h's kFp8BlockSize).
inline constexpr int64_t kFp8Block = 128;
inline constexpr float kFp8E4M3Max = 448.0f;
inline constexpr uint8_t kFp8E4M3NaN = 0x7F;

namespace fp8_internal {

constexpr float DecodeE4M3(uint8_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x80u) << 24;
  const uint32_t exp = (code >> 3) & 0xFu;
  const uint32_t mant = code & 0x7u;
  if (exp == 0xF && mant == 0x7) return std::bit_cast<float>(sign | 0x7FC00000u);  // NaN
  if (exp == 0) {
    const float magnitude = static_cast<float>(mant) * (1.0f / 512.0f);  // m * 2^-9, exact
    return sign ? -magnitude : magnitude;
  }
  // Normal: re-bias the exponent (7 -> 127) and place the 3 mantissa bits at the top of fp32's 23.
  return std::bit_cast<float>(sign | ((exp + 120u) << 23) | (mant << 20));
}

constexpr std::array<float, 256> MakeDecodeTable() {
  std::array<float, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = DecodeE4M3(static_cast<uint8_t>(c));
  return table;
}

inline constexpr std::array<float, 256> kDecodeTable = MakeDecodeTable();

}  // namespace fp8_internal

// The exact value of an E4M3 code (NaN for 0x7F and 0xFF).
inline float Fp8E4M3ToFloat(uint8_t code) { return fp8_internal::kDecodeTable[code]; }

// THE ROUNDING RULE above.
uint8_t FloatToFp8E4M3(float x);

// THE SCALE RULE's scale for a group whose largest magnitude is amax.
inline float Fp8Scale(float amax) {
  const float scale = amax / kFp8E4M3Max;
  return scale > 0.0f ? scale : 1.0f;
}

// Blocks along a dimension of n elements: ceil(n / 128).
inline int64_t Fp8NumBlocks(int64_t n) { return (n + kFp8Block - 1) / kFp8Block; }

// Quantizes a weight w [out, in] per 128x128 block: q [out, in], scales [ceil(out/128), ceil(in/128)].
void QuantizeWeightFp8(const float* w, int64_t out_features, int64_t in, uint8_t* q, float* scales);

// w[o, i] = Fp8E4M3ToFloat(q[o, i]) * scales[o / 128, i / 128] (fp32 product).
void DequantizeWeightFp8(const uint8_t* q, const float* scales, int64_t out_features, int64_t in, float* w);

// Quantizes activations x [tokens, in] per token in groups of 128 along in: q [tokens, in],
// scales [tokens, ceil(in/128)].
void QuantizeActivationFp8(const float* x, int64_t tokens, int64_t in, uint8_t* q, float* scales);

// Quantizes one group of n values (the rule above): q [n], returns its scale.
float QuantizeGroupFp8(const float* v, int64_t n, uint8_t* q);

}  // namespace octet::cpu
