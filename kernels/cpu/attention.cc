#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace octet::cpu {

void StoreKv(const float* k, const float* v, const int32_t* slot_mapping, float* k_cache, float* v_cache,
             int64_t tokens, int64_t kv_heads, int64_t head_dim) {
  const int64_t row = kv_heads * head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    std::memcpy(k_cache + slot * row, k + t * row, row * sizeof(float));
    std::memcpy(v_cache + slot * row, v + t * row, row * sizeof(float));
  }
}

void PagedAttention(const float* q, const float* k_cache, const float* v_cache, const int32_t* query_start,
                    const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                    int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
                    float* out) {
  const int64_t group = q_heads / kv_heads;
  const int64_t kv_row = kv_heads * head_dim;
  std::vector<float> scores;
  for (int64_t b = 0; b < num_seqs; ++b) {
    const int64_t q_begin = query_start[b];
    const int64_t q_len = query_start[b + 1] - q_begin;
    const int64_t ctx = context_lens[b];
    const int32_t* table = block_tables + b * max_blocks;
    scores.resize(static_cast<size_t>(ctx));
    for (int64_t j = 0; j < q_len; ++j) {
      const int64_t last = ctx - q_len + j;  // causal: keys 0..last
      for (int64_t h = 0; h < q_heads; ++h) {
        const float* qv = q + ((q_begin + j) * q_heads + h) * head_dim;
        const int64_t kvh = h / group;
        float max_score = -INFINITY;
        for (int64_t p = 0; p <= last; ++p) {
          const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
          const float* kv = k_cache + slot * kv_row + kvh * head_dim;
          float s = 0.0f;
          for (int64_t d = 0; d < head_dim; ++d) s += qv[d] * kv[d];
          s *= scale;
          scores[p] = s;
          max_score = std::max(max_score, s);
        }
        float denom = 0.0f;
        for (int64_t p = 0; p <= last; ++p) {
          scores[p] = std::exp(scores[p] - max_score);
          denom += scores[p];
        }
        float* o = out + ((q_begin + j) * q_heads + h) * head_dim;
        std::fill(o, o + head_dim, 0.0f);
        for (int64_t p = 0; p <= last; ++p) {
          const int64_t slot = static_cast<int64_t>(table[p / block_size]) * block_size + p % block_size;
          const float* vv = v_cache + slot * kv_row + kvh * head_dim;
          const float w = scores[p] / denom;
          for (int64_t d = 0; d < head_dim; ++d) o[d] += w * vv[d];
        }
      }
    }
  }
}

}  // namespace octet::cpu
