#include "kernels/cpu/linear.h"

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

}  // namespace octet::cpu
