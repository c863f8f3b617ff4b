#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/fp8.h"
#include "worker/runtime/dtype.h"

namespace octet::cpu {
namespace {

// Row readers: the fp32 key or value of one (slot, kv head), decoded into `scratch` when the cache holds another
// dtype. All three attention variants share one body, so they differ only in how a cached value reads back.
struct F32Rows {
  const float* cache;
  int64_t kv_heads, head_dim;
  const float* Row(int64_t slot, int64_t kvh, float* /*scratch*/) const {
    return cache + (slot * kv_heads + kvh) * head_dim;
  }
};

struct Bf16Rows {
  const uint16_t* cache;
  int64_t kv_heads, head_dim;
  const float* Row(int64_t slot, int64_t kvh, float* scratch) const {
    const uint16_t* src = cache + (slot * kv_heads + kvh) * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) scratch[d] = BF16ToFloat(src[d]);
    return scratch;
  }
};

struct Fp8Rows {
  const uint8_t* cache;
  const float* scales;  // [slots, kv_heads]
  int64_t kv_heads, head_dim;
  const float* Row(int64_t slot, int64_t kvh, float* scratch) const {
    const uint8_t* src = cache + (slot * kv_heads + kvh) * head_dim;
    const float s = scales[slot * kv_heads + kvh];
    for (int64_t d = 0; d < head_dim; ++d) scratch[d] = Fp8E4M3ToFloat(src[d]) * s;
    return scratch;
  }
};

template <typename Rows>
void PagedAttentionImpl(const float* q, const Rows& k_rows, const Rows& v_rows, const int32_t* query_start,
                        const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                        int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
                        float* out) {
  const int64_t group = q_heads / kv_heads;
  std::vector<float> scores;
  std::vector<float> scratch(static_cast<size_t>(head_dim));
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
          const float* kv = k_rows.Row(slot, kvh, scratch.data());
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
          const float* vv = v_rows.Row(slot, kvh, scratch.data());
          const float w = scores[p] / denom;
          for (int64_t d = 0; d < head_dim; ++d) o[d] += w * vv[d];
        }
      }
    }
  }
}

}  // namespace

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

void StoreKvBf16(const float* k, const float* v, const int32_t* slot_mapping, uint16_t* k_cache, uint16_t* v_cache,
                 int64_t tokens, int64_t kv_heads, int64_t head_dim) {
  const int64_t row = kv_heads * head_dim;
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    for (int64_t i = 0; i < row; ++i) {
      k_cache[slot * row + i] = FloatToBF16(k[t * row + i]);
      v_cache[slot * row + i] = FloatToBF16(v[t * row + i]);
    }
  }
}

void StoreKvFp8(const float* k, const float* v, const int32_t* slot_mapping, uint8_t* k_cache, uint8_t* v_cache,
                float* k_scale, float* v_scale, int64_t tokens, int64_t kv_heads, int64_t head_dim) {
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0) continue;
    for (int64_t h = 0; h < kv_heads; ++h) {
      const int64_t src = (t * kv_heads + h) * head_dim, dst = (slot * kv_heads + h) * head_dim;
      k_scale[slot * kv_heads + h] = QuantizeGroupFp8(k + src, head_dim, k_cache + dst);
      v_scale[slot * kv_heads + h] = QuantizeGroupFp8(v + src, head_dim, v_cache + dst);
    }
  }
}

void PagedAttention(const float* q, const float* k_cache, const float* v_cache, const int32_t* query_start,
                    const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                    int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale, float* out) {
  PagedAttentionImpl(q, F32Rows{k_cache, kv_heads, head_dim}, F32Rows{v_cache, kv_heads, head_dim}, query_start,
                     context_lens, block_tables, max_blocks, num_seqs, q_heads, kv_heads, head_dim, block_size, scale,
                     out);
}

void PagedAttentionBf16(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, const int32_t* query_start,
                        const int32_t* context_lens, const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs,
                        int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale,
                        float* out) {
  PagedAttentionImpl(q, Bf16Rows{k_cache, kv_heads, head_dim}, Bf16Rows{v_cache, kv_heads, head_dim}, query_start,
                     context_lens, block_tables, max_blocks, num_seqs, q_heads, kv_heads, head_dim, block_size, scale,
                     out);
}

void PagedAttentionFp8(const float* q, const uint8_t* k_cache, const uint8_t* v_cache, const float* k_scale,
                       const float* v_scale, const int32_t* query_start, const int32_t* context_lens,
                       const int32_t* block_tables, int64_t max_blocks, int64_t num_seqs, int64_t q_heads,
                       int64_t kv_heads, int64_t head_dim, int64_t block_size, float scale, float* out) {
  PagedAttentionImpl(q, Fp8Rows{k_cache, k_scale, kv_heads, head_dim}, Fp8Rows{v_cache, v_scale, kv_heads, head_dim},
                     query_start, context_lens, block_tables, max_blocks, num_seqs, q_heads, kv_heads, head_dim,
                     block_size, scale, out);
}

}  // namespace octet::cpu
