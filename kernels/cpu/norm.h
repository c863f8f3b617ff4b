// CPU reference: RMSNorm over the last dimension.
#pragma once

#include <cstdint>

namespace octet::cpu {

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * (offset ? 1 + w : w)      x, out [rows, cols]; w [cols]
void RmsNorm(const float* x, const float* w, float* out, int64_t rows, int64_t cols, float eps, bool offset);

// Gated RMSNorm (Gated DeltaNet's output norm): out[r, :] = w * x[r, :] / rms(x[r, :]) * silu(z[r, :]).
// x, z, out [rows, cols]; w [cols] (a plain weight, not offset).
void RmsNormGated(const float* x, const float* z, const float* w, float* out, int64_t rows, int64_t cols, float eps);

}  // namespace octet::cpu
