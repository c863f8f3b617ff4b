#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace octet::cpu {

void Rope(float* x, const int32_t* positions, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rotary_dim,
          float theta) {
  const int64_t half = rotary_dim / 2;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(rotary_dim));
  }
  std::vector<float> cos_v(half), sin_v(half);
  for (int64_t t = 0; t < tokens; ++t) {
    const float p = static_cast<float>(positions[t]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = p * inv_freq[i];
      cos_v[i] = std::cos(angle);
      sin_v[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float x1 = v[i];
        const float x2 = v[i + half];
        v[i] = x1 * cos_v[i] - x2 * sin_v[i];
        v[i + half] = x2 * cos_v[i] + x1 * sin_v[i];
      }
    }
  }
}

}  // namespace octet::cpu
