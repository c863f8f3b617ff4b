#include "kernels/cpu/conv1d.h"

#include <cmath>
#include <vector>

namespace octet::cpu {

void CausalConv1dSilu(const float* x, const float* w, const int32_t* query_start, const int32_t* context_lens,
                      const int32_t* state_slots, int64_t num_seqs, int64_t channels, int64_t kernel, float* conv_state,
                      float* out) {
  const int64_t hist = kernel - 1;
  std::vector<float> window(static_cast<size_t>(hist + 1));
  for (int64_t b = 0; b < num_seqs; ++b) {
    const int64_t begin = query_start[b];
    const int64_t len = query_start[b + 1] - begin;
    const bool fresh = context_lens[b] == len;  // no earlier tokens: the history is zeros
    float* state = conv_state + static_cast<int64_t>(state_slots[b]) * channels * hist;
    for (int64_t c = 0; c < channels; ++c) {
      float* s = state + c * hist;
      if (fresh) {
        for (int64_t j = 0; j < hist; ++j) s[j] = 0.0f;
      }
      const float* wc = w + c * kernel;
      for (int64_t t = 0; t < len; ++t) {
        const float xt = x[(begin + t) * channels + c];
        float acc = wc[hist] * xt;
        for (int64_t j = 0; j < hist; ++j) acc += wc[j] * s[j];
        out[(begin + t) * channels + c] = acc / (1.0f + std::exp(-acc));
        // Roll the history: drop the oldest input, append this one.
        for (int64_t j = 0; j + 1 < hist; ++j) s[j] = s[j + 1];
        if (hist > 0) s[hist - 1] = xt;
      }
    }
  }
}

}  // namespace octet::cpu
