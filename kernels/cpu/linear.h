// CPU reference: dense linear layer y = x @ w.T in fp32.
#pragma once

#include <cstdint>

namespace octet::cpu {

// out[t, o] = sum_i x[t, i] * w[o, i]          x [tokens, in], w [out, in], out [tokens, out]
void Linear(const float* x, const float* w, float* out, int64_t tokens, int64_t in, int64_t out_features);

}  // namespace octet::cpu
