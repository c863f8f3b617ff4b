#include "kernels/cpu/gated_delta.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace octet::cpu {

void GdnGates(const float* a, const float* b, const float* a_log, const float* dt_bias, int64_t tokens, int64_t heads,
              float* g, float* beta) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t i = t * heads + h;
      beta[i] = 1.0f / (1.0f + std::exp(-b[i]));
      const float x = a[i] + dt_bias[h];
      const float softplus = x > 20.0f ? x : std::log1p(std::exp(x));  // torch's softplus threshold
      g[i] = -std::exp(a_log[h]) * softplus;
    }
  }
}

namespace {

void L2Normalize(const float* x, float* y, int64_t n, float extra_scale) {
  float sum_sq = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum_sq += x[i] * x[i];
  const float inv = extra_scale / std::sqrt(sum_sq + 1e-6f);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * inv;
}

}  // namespace

void GatedDeltaRule(const float* qkv, const float* g, const float* beta, const int32_t* query_start,
                    const int32_t* context_lens, const int32_t* state_slots, int64_t num_seqs, int64_t k_heads,
                    int64_t v_heads, int64_t k_dim, int64_t v_dim, float* state, float* out) {
  const int64_t key_width = k_heads * k_dim;
  const int64_t row = 2 * key_width + v_heads * v_dim;
  const int64_t group = v_heads / k_heads;
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(k_dim));
  std::vector<float> q(k_dim), k(k_dim), kv_mem(v_dim);
  for (int64_t b = 0; b < num_seqs; ++b) {
    const int64_t begin = query_start[b];
    const int64_t len = query_start[b + 1] - begin;
    const bool fresh = context_lens[b] == len;
    for (int64_t h = 0; h < v_heads; ++h) {
      float* s = state + (static_cast<int64_t>(state_slots[b]) * v_heads + h) * k_dim * v_dim;  // [k_dim, v_dim]
      if (fresh) std::memset(s, 0, sizeof(float) * k_dim * v_dim);
      const int64_t kh = h / group;
      for (int64_t t = begin; t < begin + len; ++t) {
        const float* x = qkv + t * row;
        L2Normalize(x + kh * k_dim, q.data(), k_dim, q_scale);
        L2Normalize(x + key_width + kh * k_dim, k.data(), k_dim, 1.0f);
        const float* v = x + 2 * key_width + h * v_dim;
        const float decay = std::exp(g[t * v_heads + h]);
        const float bt = beta[t * v_heads + h];
        // S = decay * S; kv_mem = S^T k
        for (int64_t j = 0; j < v_dim; ++j) kv_mem[j] = 0.0f;
        for (int64_t i = 0; i < k_dim; ++i) {
          float* si = s + i * v_dim;
          for (int64_t j = 0; j < v_dim; ++j) {
            si[j] *= decay;
            kv_mem[j] += si[j] * k[i];
          }
        }
        // d = beta (v - kv_mem); S += k d^T; out = S^T q
        float* o = out + (t * v_heads + h) * v_dim;
        for (int64_t j = 0; j < v_dim; ++j) {
          kv_mem[j] = bt * (v[j] - kv_mem[j]);
          o[j] = 0.0f;
        }
        for (int64_t i = 0; i < k_dim; ++i) {
          float* si = s + i * v_dim;
          for (int64_t j = 0; j < v_dim; ++j) {
            si[j] += k[i] * kv_mem[j];
            o[j] += si[j] * q[i];
          }
        }
      }
    }
  }
}

}  // namespace octet::cpu
