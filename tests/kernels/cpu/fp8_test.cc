// The FP8 reference (kernels/cpu/fp8.h, LinearFp8, the bf16/FP8 KV cache) against independent formulas: the E4M3
// format from its definition, the rounding rule by brute force, quantization error within the format's bound, the
// block-scaled GEMM against its spec and against double precision, quantized attention against fp32 attention.
#include "kernels/cpu/fp8.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/linear.h"
#include "worker/runtime/dtype.h"

namespace octet::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kU = 0x1p-24;  // fp32 unit roundoff (round to nearest)

// E4M3 from its definition, in double: (-1)^s (1 + m/8) 2^(e-7), or (-1)^s m 2^-9 for e = 0.
double E4M3Formula(int code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  const double magnitude = e == 0 ? std::ldexp(m, -9) : std::ldexp(1.0 + m / 8.0, e - 7);
  return s ? -magnitude : magnitude;
}

bool IsNaNCode(int code) { return (code & 0x7F) == 0x7F; }

// The rounding rule by brute force over all positive finite codes: nearest magnitude, ties to the even code,
// |x| > 448 to 448, sign kept, NaN to 0x7F.
uint8_t BruteForceEncode(float x) {
  if (std::isnan(x)) return 0x7F;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const double a = std::fabs(static_cast<double>(x));
  if (a > 448.0) return sign | 0x7E;
  int best = 0;
  for (int c = 1; c <= 0x7E; ++c) {
    const double d = std::fabs(E4M3Formula(c) - a), best_d = std::fabs(E4M3Formula(best) - a);
    if (d < best_d || (d == best_d && c % 2 == 0)) best = c;
  }
  return static_cast<uint8_t>(sign | best);
}

std::vector<float> RandomNormal(size_t n, std::mt19937& gen, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// The quantization error bound, for one value w quantized to code q with scale s (THE SCALE RULE):
//   |w - s * dec(q)| <= s * max(2^-4 * |dec(q)|, 2^-10) + 2^-24 * |w|
// E4M3 keeps 3 mantissa bits, so rounding w / s to nearest moves a normal value (|.| >= 2^-6) by at most half an
// ulp = 2^-4 of its binade's power of two <= 2^-4 |dec(q)|, and a subnormal by at most half of 2^-9 = 2^-10; the
// fp32 division w / s adds at most 2^-24 relative. Saturation only ever removes an fp32 rounding above 448.
double QuantBound(double w, uint8_t q, double s) {
  return s * std::max(0x1p-4 * std::fabs(static_cast<double>(Fp8E4M3ToFloat(q))), 0x1p-10) + kU * std::fabs(w);
}

// ---------------------------------------------------------------------------------------------------------------
// The format

TEST(Fp8Test, EveryCodeDecodesToItsDefinition) {
  for (int c = 0; c < 256; ++c) {
    const float f = Fp8E4M3ToFloat(static_cast<uint8_t>(c));
    if (IsNaNCode(c)) {
      EXPECT_TRUE(std::isnan(f)) << "code " << c;
    } else {
      EXPECT_EQ(static_cast<double>(f), E4M3Formula(c)) << "code " << c;
      EXPECT_EQ(std::signbit(f), c >= 0x80) << "code " << c;
    }
  }
  EXPECT_EQ(Fp8E4M3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(Fp8E4M3ToFloat(0xFE), -448.0f);
  EXPECT_EQ(Fp8E4M3ToFloat(0x38), 1.0f);
  EXPECT_EQ(Fp8E4M3ToFloat(0x08), 0x1p-6f);
  EXPECT_EQ(Fp8E4M3ToFloat(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(Fp8E4M3ToFloat(0x01), 0x1p-9f);
  EXPECT_TRUE(std::signbit(Fp8E4M3ToFloat(0x80)));
}

TEST(Fp8Test, EveryCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    if (IsNaNCode(c)) continue;
    EXPECT_EQ(FloatToFp8E4M3(Fp8E4M3ToFloat(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

TEST(Fp8Test, MidpointsGoToTheEvenCodeAndNeighboursToTheNearest) {
  for (int c = 0; c < 0x7E; ++c) {
    for (uint8_t sign : {0x00, 0x80}) {
      const float lo = Fp8E4M3ToFloat(static_cast<uint8_t>(sign | c));
      const float hi = Fp8E4M3ToFloat(static_cast<uint8_t>(sign | (c + 1)));
      const float mid = (lo + hi) / 2;  // exact: 5 significant bits
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2);
      const int even = c % 2 == 0 ? c : c + 1;
      EXPECT_EQ(FloatToFp8E4M3(mid), sign | even) << "midpoint of codes " << c << " and " << c + 1;
      EXPECT_EQ(FloatToFp8E4M3(std::nextafter(mid, lo)), sign | c) << "just inside code " << c;
      EXPECT_EQ(FloatToFp8E4M3(std::nextafter(mid, hi)), sign | (c + 1)) << "just inside code " << c + 1;
    }
  }
}

TEST(Fp8Test, ValuesBeyond448SaturateAndNaNIsCanonical) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {448.0f, std::nextafter(448.0f, inf), 449.0f, 464.0f, 465.0f, 480.0f, 1e6f,
                  std::numeric_limits<float>::max(), inf}) {
    EXPECT_EQ(FloatToFp8E4M3(x), 0x7E) << x;
    EXPECT_EQ(FloatToFp8E4M3(-x), 0xFE) << -x;
  }
  EXPECT_EQ(FloatToFp8E4M3(447.0f), 0x7E);  // nearer 448 than 416
  EXPECT_EQ(FloatToFp8E4M3(431.0f), 0x7D);  // nearer 416
  EXPECT_EQ(FloatToFp8E4M3(kNaN), 0x7F);
  EXPECT_EQ(FloatToFp8E4M3(-kNaN), 0x7F);
}

TEST(Fp8Test, SubnormalsAndZerosRoundExactly) {
  EXPECT_EQ(FloatToFp8E4M3(0x1p-9f), 0x01);                                   // smallest subnormal
  EXPECT_EQ(FloatToFp8E4M3(0x1p-10f), 0x00);                                  // half of it: tie to even 0
  EXPECT_EQ(FloatToFp8E4M3(-0x1p-10f), 0x80);                                 // ... keeping the sign
  EXPECT_EQ(FloatToFp8E4M3(std::nextafter(0x1p-10f, 1.0f)), 0x01);            // just above half
  EXPECT_EQ(FloatToFp8E4M3(std::nextafter(0x1p-10f, 0.0f)), 0x00);            // just below half
  EXPECT_EQ(FloatToFp8E4M3(3 * 0x1p-10f), 0x02);                              // 1.5 ulp: tie to even 2
  EXPECT_EQ(FloatToFp8E4M3(5 * 0x1p-10f), 0x02);                              // 2.5 ulp: tie to even 2
  EXPECT_EQ(FloatToFp8E4M3(15 * 0x1p-10f), 0x08);                             // 7.5 ulp: up into the normals
  EXPECT_EQ(FloatToFp8E4M3(std::nextafter(0x1p-6f, 0.0f)), 0x08);             // just below the smallest normal
  EXPECT_EQ(FloatToFp8E4M3(std::numeric_limits<float>::denorm_min()), 0x00);  // fp32 subnormal: not an error
  EXPECT_EQ(FloatToFp8E4M3(0.0f), 0x00);
  EXPECT_EQ(FloatToFp8E4M3(-0.0f), 0x80);
  EXPECT_EQ(FloatToFp8E4M3(-1e-30f), 0x80);
}

TEST(Fp8Test, EncodingMatchesBruteForceOnRandomValuesOfEveryMagnitude) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> log2_magnitude(-16.0f, 10.0f);
  for (int n = 0; n < 100000; ++n) {
    const float x = std::exp2(log2_magnitude(gen)) * (gen() % 2 ? 1.0f : -1.0f);
    ASSERT_EQ(FloatToFp8E4M3(x), BruteForceEncode(x)) << "x = " << x;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scales and group quantization

TEST(Fp8Test, ScaleIsAmaxOver448OrOneWhenItWouldBeZero) {
  EXPECT_EQ(Fp8Scale(448.0f), 1.0f);
  EXPECT_EQ(Fp8Scale(1.0f), 1.0f / 448.0f);
  EXPECT_EQ(Fp8Scale(3.5f), 3.5f / 448.0f);
  EXPECT_EQ(Fp8Scale(0.0f), 1.0f);
  EXPECT_EQ(Fp8Scale(std::numeric_limits<float>::denorm_min()), 1.0f);  // amax / 448 underflows to 0
  EXPECT_GT(Fp8Scale(1e-36f), 0.0f);                                    // an fp32 subnormal scale is kept
  EXPECT_LT(Fp8Scale(1e-36f), 1e-38f);
}

TEST(Fp8Test, GroupQuantizationDividesByTheScale) {
  // Find v and a scale for which v * (1 / scale) and v / scale round to different fp32 values on either side of an
  // E4M3 rounding boundary; the reference must give the division's code.
  std::mt19937 gen(2);
  std::uniform_real_distribution<float> amax_dist(0.5f, 4.0f);
  bool found = false;
  for (int tries = 0; tries < 200000 && !found; ++tries) {
    const float amax = amax_dist(gen);
    const float scale = amax / 448.0f;
    const float boundary = 1.0625f;  // midpoint of 1 (0x38) and 1.125 (0x39)
    const float center = boundary * scale;
    const float below = std::nextafter(center, 0.0f), above = std::nextafter(center, 10.0f);
    for (float w : {center, below, std::nextafter(below, 0.0f), above, std::nextafter(above, 10.0f)}) {
      const uint8_t by_division = FloatToFp8E4M3(w / scale), by_reciprocal = FloatToFp8E4M3(w * (1.0f / scale));
      if (by_division == by_reciprocal) continue;
      found = true;
      const float group[2] = {amax, w};
      uint8_t q[2];
      EXPECT_EQ(QuantizeGroupFp8(group, 2, q), scale);
      EXPECT_EQ(q[0], 0x7E);
      EXPECT_EQ(q[1], by_division) << "v = " << w << ", scale = " << scale;
      break;
    }
  }
  EXPECT_TRUE(found) << "no discriminating case found";
}

TEST(Fp8Test, AllZeroGroupHasScaleOneAndZeroCodes) {
  const std::vector<float> zeros(130, 0.0f);
  std::vector<uint8_t> q(130, 0xAA);
  EXPECT_EQ(QuantizeGroupFp8(zeros.data(), 130, q.data()), 1.0f);
  EXPECT_EQ(q, std::vector<uint8_t>(130, 0));
}

// Checks a quantized [rows, cols] matrix whose scale for element (r, c) is scales[block_of(r, c)]: every code is
// the rounding rule applied to w / scale, every scale is its block's amax / 448 (or 1), the largest magnitude of a
// non-zero block hits 448, and the error is within QuantBound (reporting how close the worst element came).
template <typename BlockOf>
void CheckQuantized(const std::vector<float>& w, const std::vector<uint8_t>& q, const std::vector<float>& scales,
                    int64_t rows, int64_t cols, BlockOf block_of, const std::string& what) {
  std::vector<float> amax(scales.size(), 0.0f);
  std::vector<float> max_code(scales.size(), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t b = block_of(r, c);
      amax[b] = std::max(amax[b], std::fabs(w[r * cols + c]));
      max_code[b] = std::max(max_code[b], std::fabs(Fp8E4M3ToFloat(q[r * cols + c])));
    }
  }
  for (size_t b = 0; b < scales.size(); ++b) {
    ASSERT_EQ(scales[b], amax[b] > 0 ? amax[b] / 448.0f : 1.0f) << what << " block " << b;
    if (amax[b] > 0) {
      EXPECT_EQ(max_code[b], 448.0f) << what << " block " << b;
    }
  }
  double worst = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float x = w[r * cols + c], s = scales[block_of(r, c)];
      const uint8_t code = q[r * cols + c];
      ASSERT_EQ(code, BruteForceEncode(x / s)) << what << " at (" << r << ", " << c << ")";
      const double err = std::fabs(x - static_cast<double>(s) * Fp8E4M3ToFloat(code));
      const double bound = QuantBound(x, code, s);
      ASSERT_LE(err, bound) << what << " at (" << r << ", " << c << ")";
      worst = std::max(worst, err / bound);
    }
  }
  // Round to nearest uses the whole half-ulp budget somewhere in a few thousand values; truncation would exceed it.
  if (rows * cols >= 2048) {
    EXPECT_GT(worst, 0.9) << what;
  }
}

TEST(Fp8Test, WeightBlockQuantizationRoundTripsWithinTheFormatBound) {
  std::mt19937 gen(3);
  for (auto [out, in] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {3, 5}, {128, 128}, {130, 200}, {129, 257}, {256, 384}, {300, 64}}) {
    const std::string what = "weight " + std::to_string(out) + "x" + std::to_string(in);
    std::vector<float> w = RandomNormal(out * in, gen, 0.05f);
    // Magnitudes spread over 2^-20 .. 2^4 so that blocks hold subnormal codes too; one all-zero block.
    std::uniform_real_distribution<float> log2_spread(-16.0f, 4.0f);
    for (size_t i = 0; i < w.size(); i += 7) w[i] *= std::exp2(log2_spread(gen));
    if (out > 128 && in > 128) {
      for (int64_t o = 128; o < std::min<int64_t>(out, 256); ++o) {
        for (int64_t i = 128; i < std::min<int64_t>(in, 256); ++i) w[o * in + i] = 0.0f;
      }
    }
    std::vector<uint8_t> q(out * in);
    std::vector<float> scales(Fp8NumBlocks(out) * Fp8NumBlocks(in), kNaN);
    QuantizeWeightFp8(w.data(), out, in, q.data(), scales.data());
    const int64_t col_blocks = Fp8NumBlocks(in);
    CheckQuantized(
        w, q, scales, out, in, [&](int64_t r, int64_t c) { return (r / 128) * col_blocks + c / 128; }, what);
    if (out > 128 && in > 128) {
      EXPECT_EQ(scales[col_blocks + 1], 1.0f) << what << ": the all-zero block";
    }

    std::vector<float> dq(out * in, kNaN);
    DequantizeWeightFp8(q.data(), scales.data(), out, in, dq.data());
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t i = 0; i < in; ++i) {
        ASSERT_EQ(dq[o * in + i], Fp8E4M3ToFloat(q[o * in + i]) * scales[(o / 128) * col_blocks + i / 128]) << what;
      }
    }
  }
}

TEST(Fp8Test, ActivationQuantizationIsPerTokenPerGroupOf128) {
  std::mt19937 gen(4);
  for (int64_t tokens : {1, 3}) {
    for (int64_t in : {1, 64, 128, 200, 300, 1000}) {
      const std::string what = "activations " + std::to_string(tokens) + "x" + std::to_string(in);
      std::vector<float> x = RandomNormal(tokens * in, gen, 2.0f);
      for (int64_t t = 0; t < tokens; ++t) {  // tokens of very different magnitudes
        for (int64_t i = 0; i < in; ++i) x[t * in + i] *= std::exp2(static_cast<float>(4 * t - 3));
      }
      if (tokens > 1) std::fill(x.begin() + in, x.begin() + 2 * in, 0.0f);  // token 1 all zero
      const int64_t groups = Fp8NumBlocks(in);
      std::vector<uint8_t> q(tokens * in);
      std::vector<float> scales(tokens * groups, kNaN);
      QuantizeActivationFp8(x.data(), tokens, in, q.data(), scales.data());
      CheckQuantized(
          x, q, scales, tokens, in, [&](int64_t r, int64_t c) { return r * groups + c / 128; }, what);
      if (tokens > 1) {
        for (int64_t g = 0; g < groups; ++g) EXPECT_EQ(scales[groups + g], 1.0f) << what;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// LinearFp8

struct QuantizedLinear {
  std::vector<uint8_t> xq, wq;
  std::vector<float> xs, ws;
};

QuantizedLinear Quantize(const std::vector<float>& x, const std::vector<float>& w, int64_t tokens, int64_t in,
                         int64_t out) {
  QuantizedLinear ql{std::vector<uint8_t>(tokens * in), std::vector<uint8_t>(out * in),
                     std::vector<float>(tokens * Fp8NumBlocks(in)),
                     std::vector<float>(Fp8NumBlocks(out) * Fp8NumBlocks(in))};
  QuantizeActivationFp8(x.data(), tokens, in, ql.xq.data(), ql.xs.data());
  QuantizeWeightFp8(w.data(), out, in, ql.wq.data(), ql.ws.data());
  return ql;
}

const std::vector<std::vector<int64_t>>& LinearShapes() {  // {tokens, in, out}, ragged ones included
  static const std::vector<std::vector<int64_t>> shapes = {{1, 1, 1},    {1, 128, 128},  {2, 200, 130},
                                                           {5, 256, 3},  {17, 300, 257}, {4, 100, 128},
                                                           {9, 129, 64}, {1, 640, 200},  {16, 384, 384}};
  return shapes;
}

TEST(Fp8LinearTest, MatchesTheSpecBitForBitAndDoublePrecisionWithinRounding) {
  std::mt19937 gen(5);
  for (const auto& shape : LinearShapes()) {
    const int64_t tokens = shape[0], in = shape[1], out = shape[2], groups = Fp8NumBlocks(in);
    const std::string what =
        "LinearFp8 " + std::to_string(tokens) + "x" + std::to_string(in) + " -> " + std::to_string(out);
    const std::vector<float> x = RandomNormal(tokens * in, gen, 3.0f), w = RandomNormal(out * in, gen, 0.02f);
    const QuantizedLinear ql = Quantize(x, w, tokens, in, out);
    std::vector<float> y(tokens * out, kNaN);
    LinearFp8(ql.xq.data(), ql.xs.data(), ql.wq.data(), ql.ws.data(), y.data(), tokens, in, out);

    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t o = 0; o < out; ++o) {
        float spec = 0.0f;   // the header's definition, step by step
        double exact = 0.0;  // the same sum in double over the dequantized values
        double abs_terms = 0.0;
        for (int64_t g = 0; g < groups; ++g) {
          double p = 0.0;  // exact: see linear.h
          for (int64_t i = g * 128; i < std::min((g + 1) * 128, in); ++i) {
            p += static_cast<double>(Fp8E4M3ToFloat(ql.xq[t * in + i])) * Fp8E4M3ToFloat(ql.wq[o * in + i]);
          }
          const float xs = ql.xs[t * groups + g], ws = ql.ws[(o / 128) * groups + g];
          const float combined = xs * ws;
          const float term = static_cast<float>(p) * combined;
          spec = spec + term;
          exact += p * xs * ws;
          abs_terms += std::fabs(p * xs * ws);
        }
        const float got = y[t * out + o];
        ASSERT_EQ(got, spec) << what << " at (" << t << ", " << o << ")";
        // Rounding of P, of xs * ws, of the product, and G - 1 additions: <= (G + 2) u sum |terms| (+ O(u^2)).
        ASSERT_LE(std::fabs(got - exact), (groups + 3) * kU * abs_terms + 1e-30) << what;
      }
    }
  }
}

TEST(Fp8LinearTest, StaysWithinTheQuantizationErrorOfTheFp32Linear) {
  // Per element: |y8 - y32| <= sum_i (|x_i - dx_i| |dw_i| + |x_i| |w_i - dw_i|) + rounding, where dx, dw are the
  // dequantized values and each |x - dx| is bounded by QuantBound; rounding <= (in + G + 3) u sum_i |x_i w_i|,
  // doubled for margin. Over the whole grid, the relative error ||y8 - y32|| / ||y32|| of normally distributed data
  // is about 3.7% (E4M3's relative RMS rounding error is about 2.4% per operand); it must lie in [0.5%, 6%].
  std::mt19937 gen(6);
  double err2 = 0, ref2 = 0;
  for (const auto& shape : LinearShapes()) {
    const int64_t tokens = shape[0], in = shape[1], out = shape[2], groups = Fp8NumBlocks(in);
    const std::string what =
        "LinearFp8 vs Linear " + std::to_string(tokens) + "x" + std::to_string(in) + " -> " + std::to_string(out);
    const std::vector<float> x = RandomNormal(tokens * in, gen, 1.0f), w = RandomNormal(out * in, gen, 0.05f);
    const QuantizedLinear ql = Quantize(x, w, tokens, in, out);
    std::vector<float> y8(tokens * out, kNaN), y32(tokens * out, kNaN);
    LinearFp8(ql.xq.data(), ql.xs.data(), ql.wq.data(), ql.ws.data(), y8.data(), tokens, in, out);
    Linear(x.data(), w.data(), y32.data(), tokens, in, out);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t o = 0; o < out; ++o) {
        double bound = 0, abs_xw = 0;
        for (int64_t i = 0; i < in; ++i) {
          const double xs = ql.xs[t * groups + i / 128], ws = ql.ws[(o / 128) * groups + i / 128];
          const uint8_t xq = ql.xq[t * in + i], wq = ql.wq[o * in + i];
          const double dw = Fp8E4M3ToFloat(wq) * ws;
          bound += QuantBound(x[t * in + i], xq, xs) * std::fabs(dw) +
                   std::fabs(x[t * in + i]) * QuantBound(w[o * in + i], wq, ws);
          abs_xw += std::fabs(static_cast<double>(x[t * in + i]) * w[o * in + i]);
        }
        bound += 2 * (in + groups + 3) * kU * abs_xw;
        const double diff = static_cast<double>(y8[t * out + o]) - y32[t * out + o];
        ASSERT_LE(std::fabs(diff), bound) << what << " at (" << t << ", " << o << ")";
        err2 += diff * diff;
        ref2 += static_cast<double>(y32[t * out + o]) * y32[t * out + o];
      }
    }
  }
  const double rel = std::sqrt(err2 / ref2);
  EXPECT_LT(rel, 0.06);
  EXPECT_GT(rel, 0.005) << "no quantization error at all: is the input really quantized?";
}

// ---------------------------------------------------------------------------------------------------------------
// bf16 and FP8 KV cache

TEST(Fp8KvCacheTest, StoresBf16ValuesRoundedToNearestEven) {
  std::mt19937 gen(7);
  const int64_t kv_heads = 2, head_dim = 5, row = kv_heads * head_dim, num_slots = 12;
  const std::vector<int32_t> slots = {7, -1, 0, 11};
  const int64_t tokens = static_cast<int64_t>(slots.size());
  const std::vector<float> k = RandomNormal(tokens * row, gen), v = RandomNormal(tokens * row, gen);
  std::vector<uint16_t> k_cache(num_slots * row, 0xDEAD), v_cache(num_slots * row, 0xBEEF);
  StoreKvBf16(k.data(), v.data(), slots.data(), k_cache.data(), v_cache.data(), tokens, kv_heads, head_dim);
  for (int64_t slot = 0; slot < num_slots; ++slot) {
    const auto it = std::find(slots.begin(), slots.end(), static_cast<int32_t>(slot));
    for (int64_t e = 0; e < row; ++e) {
      if (it == slots.end()) {
        EXPECT_EQ(k_cache[slot * row + e], 0xDEAD) << "slot " << slot << " was written";
        EXPECT_EQ(v_cache[slot * row + e], 0xBEEF) << "slot " << slot << " was written";
        continue;
      }
      const int64_t t = it - slots.begin();
      EXPECT_EQ(k_cache[slot * row + e], FloatToBF16(k[t * row + e]));
      EXPECT_EQ(v_cache[slot * row + e], FloatToBF16(v[t * row + e]));
      // Round to nearest: within half a bf16 ulp (2^-8 relative).
      EXPECT_LE(std::fabs(BF16ToFloat(k_cache[slot * row + e]) - k[t * row + e]), 0x1p-8 * std::fabs(k[t * row + e]));
    }
  }
}

TEST(Fp8KvCacheTest, StoresFp8ValuesWithOneScalePerTokenAndHead) {
  std::mt19937 gen(8);
  const int64_t kv_heads = 3, head_dim = 40, row = kv_heads * head_dim, num_slots = 10;
  const std::vector<int32_t> slots = {4, -1, 9, 0};
  const int64_t tokens = static_cast<int64_t>(slots.size());
  std::vector<float> k = RandomNormal(tokens * row, gen), v = RandomNormal(tokens * row, gen, 10.0f);
  for (int64_t t = 0; t < tokens; ++t) {  // heads of different magnitudes, and an all-zero head
    for (int64_t h = 0; h < kv_heads; ++h) {
      for (int64_t d = 0; d < head_dim; ++d) k[(t * kv_heads + h) * head_dim + d] *= std::exp2(3.0f * h - 3.0f);
    }
  }
  std::fill(k.begin() + (2 * kv_heads + 1) * head_dim, k.begin() + (2 * kv_heads + 2) * head_dim, 0.0f);
  std::vector<uint8_t> k_cache(num_slots * row, 0xAA), v_cache(num_slots * row, 0xBB);
  std::vector<float> k_scale(num_slots * kv_heads, -1.0f), v_scale(num_slots * kv_heads, -2.0f);
  StoreKvFp8(k.data(), v.data(), slots.data(), k_cache.data(), v_cache.data(), k_scale.data(), v_scale.data(), tokens,
             kv_heads, head_dim);
  for (int64_t slot = 0; slot < num_slots; ++slot) {
    const auto it = std::find(slots.begin(), slots.end(), static_cast<int32_t>(slot));
    for (int64_t h = 0; h < kv_heads; ++h) {
      if (it == slots.end()) {
        EXPECT_EQ(k_scale[slot * kv_heads + h], -1.0f) << "slot " << slot << " was written";
        EXPECT_EQ(v_scale[slot * kv_heads + h], -2.0f) << "slot " << slot << " was written";
        for (int64_t d = 0; d < head_dim; ++d) {
          EXPECT_EQ(k_cache[(slot * kv_heads + h) * head_dim + d], 0xAA);
          EXPECT_EQ(v_cache[(slot * kv_heads + h) * head_dim + d], 0xBB);
        }
        continue;
      }
      const int64_t t = it - slots.begin();
      for (int which = 0; which < 2; ++which) {
        const float* src = (which == 0 ? k.data() : v.data()) + (t * kv_heads + h) * head_dim;
        const uint8_t* codes = (which == 0 ? k_cache.data() : v_cache.data()) + (slot * kv_heads + h) * head_dim;
        const float scale = (which == 0 ? k_scale : v_scale)[slot * kv_heads + h];
        float amax = 0;
        for (int64_t d = 0; d < head_dim; ++d) amax = std::max(amax, std::fabs(src[d]));
        ASSERT_EQ(scale, amax > 0 ? amax / 448.0f : 1.0f) << "slot " << slot << " head " << h << " " << which;
        for (int64_t d = 0; d < head_dim; ++d) {
          ASSERT_EQ(codes[d], BruteForceEncode(src[d] / scale)) << "slot " << slot << " head " << h << " d " << d;
        }
      }
    }
  }
  EXPECT_EQ(k_scale[9 * kv_heads + 1], 1.0f) << "the all-zero head (token 2 -> slot 9, head 1)";
}

struct KvCase {
  std::vector<int32_t> query_lens, context_lens;
  int64_t q_heads, kv_heads, head_dim, block_size;
};

// Builds a paged cache for the sequences (blocks shuffled), stores every context token through the given store
// function, and runs attention of the last query_len tokens of each.
struct PagedSetup {
  std::vector<int32_t> query_start{0}, block_tables, slot_mapping;
  int64_t max_blocks = 0, num_slots = 0, tokens = 0;
  std::vector<float> q, k, v;              // q [tokens, Hq, D]; k, v [all context tokens, Hk, D] in slot_mapping order
  std::vector<int64_t> first_context_row;  // per sequence, its first row in k / v
};

PagedSetup MakePagedSetup(const KvCase& c, std::mt19937& gen) {
  PagedSetup s;
  const int64_t num_seqs = static_cast<int64_t>(c.query_lens.size());
  int64_t total_blocks = 0;
  for (int32_t ctx : c.context_lens) {
    s.max_blocks = std::max<int64_t>(s.max_blocks, (ctx + c.block_size - 1) / c.block_size);
    total_blocks += (ctx + c.block_size - 1) / c.block_size;
  }
  std::vector<int32_t> physical(total_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), gen);
  s.num_slots = total_blocks * c.block_size;
  s.block_tables.assign(num_seqs * s.max_blocks, 0);
  size_t next = 0;
  int64_t rows = 0;
  for (int64_t b = 0; b < num_seqs; ++b) {
    const int64_t nb = (c.context_lens[b] + c.block_size - 1) / c.block_size;
    for (int64_t i = 0; i < nb; ++i) s.block_tables[b * s.max_blocks + i] = physical[next++];
    s.first_context_row.push_back(rows);
    for (int64_t p = 0; p < c.context_lens[b]; ++p) {
      s.slot_mapping.push_back(s.block_tables[b * s.max_blocks + p / c.block_size] * c.block_size + p % c.block_size);
    }
    rows += c.context_lens[b];
    s.query_start.push_back(s.query_start.back() + c.query_lens[b]);
  }
  s.tokens = s.query_start.back();
  s.k = RandomNormal(rows * c.kv_heads * c.head_dim, gen);
  s.v = RandomNormal(rows * c.kv_heads * c.head_dim, gen);
  s.q = RandomNormal(s.tokens * c.q_heads * c.head_dim, gen, 2.0f);
  return s;
}

// The bound on |attention over (k', v') - attention over (k, v)| for one query and head, from the perturbation of
// its scores and values: with D = max_p |s'_p - s_p| (s the scaled logits) the softmax weights change by a factor
// within e^{+-2D}, so |o' - o| <= max_p |v'_p - v_p|_inf + (e^{2D} - 1) max_p |v_p|_inf; plus 1e-4 for the fp32
// rounding of both computations (|v| of order 1, at most 70 keys).
double AttentionBound(const float* qv, const std::vector<float>& k, const std::vector<float>& v,
                      const std::vector<float>& kq, const std::vector<float>& vq, int64_t first_row, int64_t last_pos,
                      int64_t kv_heads, int64_t kvh, int64_t head_dim, double scale) {
  double d_scores = 0, d_values = 0, v_max = 0;
  for (int64_t p = 0; p <= last_pos; ++p) {
    const int64_t base = ((first_row + p) * kv_heads + kvh) * head_dim;
    double s = 0, sq = 0;
    for (int64_t d = 0; d < head_dim; ++d) {
      s += static_cast<double>(qv[d]) * k[base + d];
      sq += static_cast<double>(qv[d]) * kq[base + d];
      d_values = std::max(d_values, std::fabs(static_cast<double>(v[base + d]) - vq[base + d]));
      v_max = std::max(v_max, std::fabs(static_cast<double>(v[base + d])));
    }
    d_scores = std::max(d_scores, scale * std::fabs(s - sq));
  }
  return d_values + std::expm1(2 * d_scores) * v_max + 1e-4;
}

void CheckQuantizedAttention(const KvCase& c, DType cache_dtype, uint32_t seed) {
  std::mt19937 gen(seed);
  PagedSetup s = MakePagedSetup(c, gen);
  const int64_t num_seqs = static_cast<int64_t>(c.query_lens.size());
  const int64_t row = c.kv_heads * c.head_dim, all_rows = static_cast<int64_t>(s.slot_mapping.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const std::string what = std::string(cache_dtype == DType::kBF16 ? "bf16" : "fp8") + " KV, Hq " +
                           std::to_string(c.q_heads) + " Hk " + std::to_string(c.kv_heads) + " D " +
                           std::to_string(c.head_dim) + " block " + std::to_string(c.block_size);

  // The fp32 baseline over the original values.
  std::vector<float> k32(s.num_slots * row, kNaN), v32(s.num_slots * row, kNaN);
  StoreKv(s.k.data(), s.v.data(), s.slot_mapping.data(), k32.data(), v32.data(), all_rows, c.kv_heads, c.head_dim);
  std::vector<float> o32(s.tokens * c.q_heads * c.head_dim, kNaN), o(o32.size(), kNaN), o_dq(o32.size(), kNaN);
  PagedAttention(s.q.data(), k32.data(), v32.data(), s.query_start.data(), c.context_lens.data(), s.block_tables.data(),
                 s.max_blocks, num_seqs, c.q_heads, c.kv_heads, c.head_dim, c.block_size, scale, o32.data());

  // The quantized cache, its attention, and the values it holds, dequantized (in slot order and in context order).
  std::vector<float> k_dq(s.num_slots * row, kNaN), v_dq(s.num_slots * row, kNaN);
  if (cache_dtype == DType::kBF16) {
    std::vector<uint16_t> kc(s.num_slots * row, 0x7FC0), vc(s.num_slots * row, 0x7FC0);  // NaN where unwritten
    StoreKvBf16(s.k.data(), s.v.data(), s.slot_mapping.data(), kc.data(), vc.data(), all_rows, c.kv_heads, c.head_dim);
    PagedAttentionBf16(s.q.data(), kc.data(), vc.data(), s.query_start.data(), c.context_lens.data(),
                       s.block_tables.data(), s.max_blocks, num_seqs, c.q_heads, c.kv_heads, c.head_dim, c.block_size,
                       scale, o.data());
    for (size_t i = 0; i < kc.size(); ++i) k_dq[i] = BF16ToFloat(kc[i]), v_dq[i] = BF16ToFloat(vc[i]);
  } else {
    std::vector<uint8_t> kc(s.num_slots * row, 0x7F), vc(s.num_slots * row, 0x7F);
    std::vector<float> ks(s.num_slots * c.kv_heads, kNaN), vs(s.num_slots * c.kv_heads, kNaN);
    StoreKvFp8(s.k.data(), s.v.data(), s.slot_mapping.data(), kc.data(), vc.data(), ks.data(), vs.data(), all_rows,
               c.kv_heads, c.head_dim);
    PagedAttentionFp8(s.q.data(), kc.data(), vc.data(), ks.data(), vs.data(), s.query_start.data(),
                      c.context_lens.data(), s.block_tables.data(), s.max_blocks, num_seqs, c.q_heads, c.kv_heads,
                      c.head_dim, c.block_size, scale, o.data());
    for (size_t i = 0; i < kc.size(); ++i) {
      const int64_t slot_head = static_cast<int64_t>(i) / c.head_dim;
      k_dq[i] = Fp8E4M3ToFloat(kc[i]) * ks[slot_head];
      v_dq[i] = Fp8E4M3ToFloat(vc[i]) * vs[slot_head];
    }
  }
  // Reading back is exactly "dequantize, then the fp32 attention".
  PagedAttention(s.q.data(), k_dq.data(), v_dq.data(), s.query_start.data(), c.context_lens.data(),
                 s.block_tables.data(), s.max_blocks, num_seqs, c.q_heads, c.kv_heads, c.head_dim, c.block_size, scale,
                 o_dq.data());
  for (size_t i = 0; i < o.size(); ++i) ASSERT_EQ(o[i], o_dq[i]) << what << " element " << i;

  std::vector<float> kq(s.k.size()), vq(s.v.size());
  for (int64_t r = 0; r < all_rows; ++r) {
    std::copy_n(k_dq.begin() + s.slot_mapping[r] * row, row, kq.begin() + r * row);
    std::copy_n(v_dq.begin() + s.slot_mapping[r] * row, row, vq.begin() + r * row);
  }
  double worst = 0, err2 = 0, ref2 = 0;
  for (int64_t b = 0; b < num_seqs; ++b) {
    for (int64_t j = 0; j < c.query_lens[b]; ++j) {
      const int64_t t = s.query_start[b] + j, last = c.context_lens[b] - c.query_lens[b] + j;
      for (int64_t h = 0; h < c.q_heads; ++h) {
        const int64_t kvh = h / (c.q_heads / c.kv_heads);
        const float* qv = s.q.data() + (t * c.q_heads + h) * c.head_dim;
        const double bound =
            AttentionBound(qv, s.k, s.v, kq, vq, s.first_context_row[b], last, c.kv_heads, kvh, c.head_dim, scale);
        for (int64_t d = 0; d < c.head_dim; ++d) {
          const size_t i = (t * c.q_heads + h) * c.head_dim + d;
          ASSERT_LE(std::fabs(o[i] - o32[i]), bound) << what << " token " << t << " head " << h << " d " << d;
          worst = std::max(worst, static_cast<double>(std::fabs(o[i] - o32[i])));
          err2 += (static_cast<double>(o[i]) - o32[i]) * (static_cast<double>(o[i]) - o32[i]);
          ref2 += static_cast<double>(o32[i]) * o32[i];
        }
      }
    }
  }
  // Stated tolerance of the relative RMS error ||o - o32|| / ||o32|| on this data (unit-normal K/V): bf16 0.5%
  // (about 0.25% seen: bf16's relative rounding error is at most 2^-9), FP8 E4M3 6% (about 3.5% seen: at most 2^-4
  // per value). A tenth of those as a floor proves the cache really is narrower than fp32.
  const double rel = std::sqrt(err2 / ref2), limit = cache_dtype == DType::kBF16 ? 0.005 : 0.06;
  EXPECT_LT(rel, limit) << what << " (largest absolute error " << worst << ")";
  EXPECT_GT(rel, limit / 10) << what << ": the cache lost almost nothing, was it quantized?";
}

TEST(Fp8KvCacheTest, QuantizedAttentionStaysNearFp32Attention) {
  uint32_t seed = 20;
  for (DType dtype : {DType::kBF16, DType::kF8E4M3}) {
    for (const KvCase& c : std::vector<KvCase>{
             {{1, 5, 3}, {1, 37, 40}, 4, 2, 16, 4},
             {{1, 1}, {70, 9}, 8, 2, 64, 16},
             {{7, 1}, {7, 33}, 2, 1, 128, 16},
             {{4}, {20}, 6, 3, 33, 1},
         }) {
      CheckQuantizedAttention(c, dtype, seed++);
    }
  }
}

}  // namespace
}  // namespace octet::cpu
