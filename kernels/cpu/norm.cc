#include "kernels/cpu/norm.h"

#include <cmath>

namespace octet::cpu {

void RmsNorm(const float* x, const float* w, float* out, int64_t rows, int64_t cols, float eps, bool offset) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = out + r * cols;
    double sum_sq = 0.0;  // double: the reference should not depend on summation order
    for (int64_t c = 0; c < cols; ++c) sum_sq += static_cast<double>(xr[c]) * xr[c];
    const float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_sq / static_cast<double>(cols)) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      const float scale = offset ? 1.0f + w[c] : w[c];
      yr[c] = scale * (xr[c] * inv_rms);
    }
  }
}

void RmsNormGated(const float* x, const float* z, const float* w, float* out, int64_t rows, int64_t cols, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    const float* zr = z + r * cols;
    float* yr = out + r * cols;
    double sum_sq = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum_sq += static_cast<double>(xr[c]) * xr[c];
    const float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_sq / static_cast<double>(cols)) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      const float silu_z = zr[c] / (1.0f + std::exp(-zr[c]));
      yr[c] = w[c] * (xr[c] * inv_rms) * silu_z;
    }
  }
}

}  // namespace octet::cpu
