#include "kernels/cpu/linear.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/fp8.h"

namespace octet::cpu {
namespace {

// Eight independent partial sums let the compiler vectorise the dot product without -ffast-math.
inline float Dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  }
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// The exact sum of a[i] * b[i] over decoded E4M3 values (see LinearFp8): every partial sum is representable, so the
// four accumulators (there for speed) cannot change the result.
inline double ExactDot(const double* a, const double* b, int64_t n) {
  double acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) acc[k] += a[i + k] * b[i + k];
  }
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

void DecodeFp8(const uint8_t* q, int64_t n, double* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = Fp8E4M3ToFloat(q[i]);
}

}  // namespace

void Linear(const float* x, const float* w, float* out, int64_t tokens, int64_t in, int64_t out_features) {
  // Blocks of 4 tokens reuse each weight row while it is in L1: decode batches are small, weights are large.
  constexpr int64_t kTokenBlock = 4;
  for (int64_t t0 = 0; t0 < tokens; t0 += kTokenBlock) {
    const int64_t t1 = t0 + kTokenBlock < tokens ? t0 + kTokenBlock : tokens;
    for (int64_t o = 0; o < out_features; ++o) {
      const float* wr = w + o * in;
      for (int64_t t = t0; t < t1; ++t) out[t * out_features + o] = Dot(x + t * in, wr, in);
    }
  }
}

void LinearFp8(const uint8_t* xq, const float* xs, const uint8_t* wq, const float* ws, float* out, int64_t tokens,
               int64_t in, int64_t out_features) {
  const int64_t groups = Fp8NumBlocks(in);
  // Decoded into doubles, where the group dot products are exact. Blocks of tokens reuse each decoded weight row.
  constexpr int64_t kTokenBlock = 8;
  std::vector<double> x(static_cast<size_t>(std::min(tokens, kTokenBlock) * in)), w(static_cast<size_t>(in));
  for (int64_t t0 = 0; t0 < tokens; t0 += kTokenBlock) {
    const int64_t t1 = std::min(t0 + kTokenBlock, tokens);
    DecodeFp8(xq + t0 * in, (t1 - t0) * in, x.data());
    for (int64_t o = 0; o < out_features; ++o) {
      DecodeFp8(wq + o * in, in, w.data());
      const float* w_scales = ws + (o / kFp8Block) * groups;
      for (int64_t t = t0; t < t1; ++t) {
        const double* xr = x.data() + (t - t0) * in;
        const float* x_scales = xs + t * groups;
        float acc = 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t i0 = g * kFp8Block;
          const auto partial = static_cast<float>(ExactDot(xr + i0, w.data() + i0, std::min(kFp8Block, in - i0)));
          const float combined = x_scales[g] * w_scales[g];
          const float term = partial * combined;
          acc = acc + term;
        }
        out[t * out_features + o] = acc;
      }
    }
  }
}

}  // namespace octet::cpu
