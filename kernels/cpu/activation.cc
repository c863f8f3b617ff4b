#include "kernels/cpu/activation.h"

#include <cmath>

namespace octet::cpu {

void SiluMul(const float* gate_up, float* out, int64_t tokens, int64_t inter) {
  for (int64_t t = 0; t < tokens; ++t) {
    const float* g = gate_up + t * 2 * inter;
    const float* u = g + inter;
    float* o = out + t * inter;
    for (int64_t i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

void Add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void SplitQueryGate(const float* qg, float* q, float* gate, int64_t tokens, int64_t heads, int64_t head_dim) {
  for (int64_t r = 0; r < tokens * heads; ++r) {
    const float* src = qg + r * 2 * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) {
      q[r * head_dim + d] = src[d];
      gate[r * head_dim + d] = src[head_dim + d];
    }
  }
}

void SigmoidGate(const float* x, const float* gate, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] / (1.0f + std::exp(-gate[i]));
}

}  // namespace octet::cpu
