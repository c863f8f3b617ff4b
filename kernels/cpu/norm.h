// CPU reference: RMSNorm over the last dimension.
#pragma once

#include <cstdint>

namespace octet::cpu {

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * (offset ? 1 + w : w)      x, out [rows, cols]; w [cols]
void RmsNorm(const float* x, const float* w, float* out, int64_t rows, int64_t cols, float eps, bool offset);

}  // namespace octet::cpu
