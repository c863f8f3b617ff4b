// The CPU reference ops (kernels/cpu) against naive double-precision formulas written here, on random data over
// a grid of shapes.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace octet::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> Random(size_t n, std::mt19937& gen, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// |actual - expected| <= atol + rtol * |expected|, reported with the index.
void ExpectClose(const std::vector<float>& actual, const std::vector<double>& expected, double atol, double rtol,
                 const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double tol = atol + rtol * std::abs(expected[i]);
    if (!(std::abs(static_cast<double>(actual[i]) - expected[i]) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " is " << actual[i] << ", expected " << expected[i];
      if (++reported == 5) return;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// RmsNorm

TEST(CpuOpsTest, RmsNormMatchesNaiveFormula) {
  std::mt19937 gen(1);
  for (int64_t rows : {1, 3, 7}) {
    for (int64_t cols : {1, 5, 64, 129, 1000}) {
      for (bool offset : {false, true}) {
        const std::vector<float> x = Random(rows * cols, gen, -3.0f, 3.0f);
        const std::vector<float> w = Random(cols, gen, -1.5f, 1.5f);
        const float eps = 1e-6f;
        std::vector<float> out(rows * cols, kNaN);
        RmsNorm(x.data(), w.data(), out.data(), rows, cols, eps, offset);

        std::vector<double> ref(rows * cols);
        for (int64_t r = 0; r < rows; ++r) {
          double ss = 0;
          for (int64_t c = 0; c < cols; ++c) ss += static_cast<double>(x[r * cols + c]) * x[r * cols + c];
          const double inv = 1.0 / std::sqrt(ss / cols + eps);
          for (int64_t c = 0; c < cols; ++c) {
            const double scale = offset ? 1.0 + w[c] : static_cast<double>(w[c]);
            ref[r * cols + c] = x[r * cols + c] * inv * scale;
          }
        }
        ExpectClose(out, ref, 1e-6, 2e-6,
                    "RmsNorm rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                        " offset=" + std::to_string(offset));
      }
    }
  }
}

TEST(CpuOpsTest, RmsNormEpsDominatesAZeroRow) {
  const std::vector<float> x(8, 0.0f);
  const std::vector<float> w(8, 2.0f);
  std::vector<float> out(8, kNaN);
  RmsNorm(x.data(), w.data(), out.data(), 1, 8, 1e-6f, false);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  // Constant row c: x / sqrt(c^2 + eps) * w, with a large eps visible.
  const std::vector<float> c(4, 0.5f);
  const std::vector<float> ones(4, 1.0f);
  std::vector<float> out2(4);
  RmsNorm(c.data(), ones.data(), out2.data(), 1, 4, 0.75f, false);
  for (float v : out2) EXPECT_NEAR(v, 0.5, 1e-6);  // 0.5 / sqrt(0.25 + 0.75)
  RmsNorm(c.data(), ones.data(), out2.data(), 1, 4, 0.75f, true);
  for (float v : out2) EXPECT_NEAR(v, 1.0, 1e-6);  // (1 + w) = 2
}

// ---------------------------------------------------------------------------------------------------------------
// Linear

TEST(CpuOpsTest, LinearMatchesNaiveMatmulForOddSizes) {
  std::mt19937 gen(2);
  for (int64_t tokens : {1, 3, 4, 5, 9}) {
    for (int64_t in : {1, 7, 8, 13, 65, 130}) {
      for (int64_t out_features : {1, 3, 17}) {
        const std::vector<float> x = Random(tokens * in, gen);
        const std::vector<float> w = Random(out_features * in, gen);
        std::vector<float> out(tokens * out_features, kNaN);
        Linear(x.data(), w.data(), out.data(), tokens, in, out_features);
        std::vector<double> ref(tokens * out_features);
        double max_abs_sum = 0;
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t o = 0; o < out_features; ++o) {
            double s = 0, abs_sum = 0;
            for (int64_t i = 0; i < in; ++i) {
              s += static_cast<double>(x[t * in + i]) * w[o * in + i];
              abs_sum += std::abs(static_cast<double>(x[t * in + i]) * w[o * in + i]);
            }
            ref[t * out_features + o] = s;
            max_abs_sum = std::max(max_abs_sum, abs_sum);
          }
        }
        // fp32 accumulation: error bounded by ~in * eps * sum|x w|.
        ExpectClose(out, ref, 1e-6 + 2e-7 * static_cast<double>(in) * max_abs_sum, 0,
                    "Linear tokens=" + std::to_string(tokens) + " in=" + std::to_string(in) +
                        " out=" + std::to_string(out_features));
      }
    }
  }
}

TEST(CpuOpsTest, LinearIdentityWeightCopiesInput) {
  const int64_t n = 11;
  std::vector<float> w(n * n, 0.0f);
  for (int64_t i = 0; i < n; ++i) w[i * n + i] = 1.0f;
  std::mt19937 gen(3);
  const std::vector<float> x = Random(6 * n, gen);
  std::vector<float> out(6 * n);
  Linear(x.data(), w.data(), out.data(), 6, n, n);
  EXPECT_EQ(out, x);
}

// ---------------------------------------------------------------------------------------------------------------
// Rope

TEST(CpuOpsTest, RopeMatchesRotateHalfFormula) {
  std::mt19937 gen(4);
  struct Case {
    int64_t head_dim, rotary_dim;
  };
  for (const Case c : {Case{8, 8}, Case{64, 64}, Case{64, 32}, Case{10, 4}, Case{128, 64}, Case{6, 2}}) {
    for (int64_t heads : {1, 3}) {
      for (float theta : {10000.0f, 1000000.0f}) {
        const int64_t tokens = 5;
        std::vector<int32_t> positions = {0, 1, 17, 1023, 4000};
        const std::vector<float> x = Random(tokens * heads * c.head_dim, gen);
        std::vector<float> y = x;
        Rope(y.data(), positions.data(), tokens, heads, c.head_dim, c.rotary_dim, theta);

        const int64_t half = c.rotary_dim / 2;
        const std::string what = "Rope head_dim=" + std::to_string(c.head_dim) +
                                 " rotary_dim=" + std::to_string(c.rotary_dim) + " heads=" + std::to_string(heads) +
                                 " theta=" + std::to_string(theta);
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t h = 0; h < heads; ++h) {
            const float* in = x.data() + (t * heads + h) * c.head_dim;
            const float* out = y.data() + (t * heads + h) * c.head_dim;
            for (int64_t i = 0; i < half; ++i) {
              const double angle =
                  positions[t] * std::pow(static_cast<double>(theta), -2.0 * i / static_cast<double>(c.rotary_dim));
              const double x1 = in[i], x2 = in[i + half];
              const double e1 = x1 * std::cos(angle) - x2 * std::sin(angle);
              const double e2 = x2 * std::cos(angle) + x1 * std::sin(angle);
              // The op computes the angle in fp32 (as transformers does): its error grows with the position.
              const double norm = std::hypot(x1, x2);
              const double tol = 1e-6 + (1e-6 + 4e-7 * positions[t]) * norm;
              EXPECT_NEAR(out[i], e1, tol) << what << " t=" << t << " h=" << h << " i=" << i;
              EXPECT_NEAR(out[i + half], e2, tol) << what << " t=" << t << " h=" << h << " i=" << i;
              // A rotation: each (i, i + half) pair keeps its length.
              EXPECT_NEAR(std::hypot(static_cast<double>(out[i]), static_cast<double>(out[i + half])), norm,
                          1e-6 + 1e-6 * norm)
                  << what;
              if (positions[t] == 0) {
                EXPECT_EQ(out[i], in[i]);
                EXPECT_EQ(out[i + half], in[i + half]);
              }
            }
            // Dims past rotary_dim are left exactly as they were.
            for (int64_t d = c.rotary_dim; d < c.head_dim; ++d) {
              EXPECT_EQ(out[d], in[d]) << what << " t=" << t << " h=" << h << " d=" << d;
            }
          }
        }
      }
    }
  }
}

TEST(CpuOpsTest, RopeRelativePositionProperty) {
  // <rope(q, m), rope(k, n)> depends only on m - n.
  std::mt19937 gen(5);
  const int64_t d = 16;
  const std::vector<float> q = Random(d, gen), k = Random(d, gen);
  auto dot_at = [&](int32_t m, int32_t n) {
    std::vector<float> a = q, b = k;
    Rope(a.data(), &m, 1, 1, d, d, 10000.0f);
    Rope(b.data(), &n, 1, 1, d, d, 10000.0f);
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
  };
  EXPECT_NEAR(dot_at(5, 2), dot_at(103, 100), 1e-4);
  EXPECT_NEAR(dot_at(7, 7), dot_at(0, 0), 1e-4);
}

// ---------------------------------------------------------------------------------------------------------------
// StoreKv

TEST(CpuOpsTest, StoreKvWritesSlotsAndSkipsNegativeOnes) {
  std::mt19937 gen(6);
  const int64_t num_blocks = 5, block_size = 4, kv_heads = 2, head_dim = 3;
  const int64_t row = kv_heads * head_dim;
  const int64_t num_slots = num_blocks * block_size;
  const std::vector<int32_t> slots = {7, -1, 0, 19, -5, 12, 3};
  const int64_t tokens = static_cast<int64_t>(slots.size());
  const std::vector<float> k = Random(tokens * row, gen), v = Random(tokens * row, gen);
  const float kSentinel = 1234.5f;
  // The caches sit between guard rows, so that a write at a negative slot lands in memory the test can check.
  const int64_t guard = 8;
  std::vector<float> k_buf((num_slots + 2 * guard) * row, kSentinel), v_buf((num_slots + 2 * guard) * row, -kSentinel);
  float* k_cache = k_buf.data() + guard * row;
  float* v_cache = v_buf.data() + guard * row;
  StoreKv(k.data(), v.data(), slots.data(), k_cache, v_cache, tokens, kv_heads, head_dim);

  for (int64_t i = 0; i < guard * row; ++i) {
    EXPECT_EQ(k_buf[i], kSentinel) << "written before slot 0";
    EXPECT_EQ(v_buf[i], -kSentinel) << "written before slot 0";
    EXPECT_EQ(k_buf[k_buf.size() - 1 - i], kSentinel) << "written past the last slot";
    EXPECT_EQ(v_buf[v_buf.size() - 1 - i], -kSentinel) << "written past the last slot";
  }
  for (int64_t slot = 0; slot < num_slots; ++slot) {
    const auto it = std::find(slots.begin(), slots.end(), static_cast<int32_t>(slot));
    for (int64_t e = 0; e < row; ++e) {
      if (it == slots.end()) {
        EXPECT_EQ(k_cache[slot * row + e], kSentinel) << "slot " << slot << " was written";
        EXPECT_EQ(v_cache[slot * row + e], -kSentinel) << "slot " << slot << " was written";
      } else {
        const int64_t t = it - slots.begin();
        EXPECT_EQ(k_cache[slot * row + e], k[t * row + e]) << "slot " << slot;
        EXPECT_EQ(v_cache[slot * row + e], v[t * row + e]) << "slot " << slot;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// PagedAttention

struct SeqShape {
  int32_t query_len;
  int32_t context_len;  // cached + new; the queries are its last query_len positions
};

// Dense causal attention in double over one sequence's contiguous K/V [ctx, kv_heads, head_dim].
void DenseAttention(const std::vector<float>& q, int64_t q_offset, const std::vector<float>& k,
                    const std::vector<float>& v, const SeqShape& s, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                    double scale, std::vector<double>& out) {
  const int64_t group = q_heads / kv_heads;
  for (int64_t j = 0; j < s.query_len; ++j) {
    const int64_t pos = s.context_len - s.query_len + j;
    for (int64_t h = 0; h < q_heads; ++h) {
      const int64_t kvh = h / group;
      const float* qv = q.data() + ((q_offset + j) * q_heads + h) * head_dim;
      std::vector<double> scores(pos + 1);
      double max_s = -INFINITY;
      for (int64_t p = 0; p <= pos; ++p) {
        double dot = 0;
        for (int64_t d = 0; d < head_dim; ++d)
          dot += static_cast<double>(qv[d]) * k[(p * kv_heads + kvh) * head_dim + d];
        scores[p] = dot * scale;
        max_s = std::max(max_s, scores[p]);
      }
      double denom = 0;
      for (double& sc : scores) {
        sc = std::exp(sc - max_s);
        denom += sc;
      }
      double* o = out.data() + ((q_offset + j) * q_heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        double acc = 0;
        for (int64_t p = 0; p <= pos; ++p) acc += scores[p] / denom * v[(p * kv_heads + kvh) * head_dim + d];
        o[d] = acc;
      }
    }
  }
}

void CheckPagedAttention(const std::vector<SeqShape>& seqs, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                         int64_t block_size, uint32_t seed) {
  std::mt19937 gen(seed);
  const int64_t num_seqs = static_cast<int64_t>(seqs.size());
  const std::string what = "PagedAttention q_heads=" + std::to_string(q_heads) +
                           " kv_heads=" + std::to_string(kv_heads) + " head_dim=" + std::to_string(head_dim) +
                           " block_size=" + std::to_string(block_size);

  // Physical blocks: every sequence's blocks, plus one poisoned block used as table padding, all shuffled.
  int64_t max_blocks = 0, total_blocks = 1;
  for (const SeqShape& s : seqs) {
    const int64_t nb = (s.context_len + block_size - 1) / block_size;
    max_blocks = std::max(max_blocks, nb);
    total_blocks += nb;
  }
  max_blocks += 1;  // padding at the end of every table
  std::vector<int32_t> physical(total_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), gen);
  const int32_t poison_block = physical.back();

  const int64_t kv_row = kv_heads * head_dim;
  // Unwritten cache slots are NaN: reading one (a position past the context, or padding) poisons the output.
  std::vector<float> k_cache(total_blocks * block_size * kv_row, kNaN);
  std::vector<float> v_cache(total_blocks * block_size * kv_row, kNaN);
  std::vector<int32_t> block_tables(num_seqs * max_blocks, poison_block);
  std::vector<int32_t> query_start = {0};
  std::vector<int32_t> context_lens;
  std::vector<std::vector<float>> dense_k, dense_v;
  size_t next_block = 0;
  for (int64_t b = 0; b < num_seqs; ++b) {
    const SeqShape& s = seqs[b];
    const int64_t nb = (s.context_len + block_size - 1) / block_size;
    for (int64_t i = 0; i < nb; ++i) block_tables[b * max_blocks + i] = physical[next_block++];
    dense_k.push_back(Random(s.context_len * kv_row, gen));
    dense_v.push_back(Random(s.context_len * kv_row, gen));
    for (int64_t p = 0; p < s.context_len; ++p) {
      const int64_t slot =
          static_cast<int64_t>(block_tables[b * max_blocks + p / block_size]) * block_size + p % block_size;
      std::copy_n(dense_k[b].begin() + p * kv_row, kv_row, k_cache.begin() + slot * kv_row);
      std::copy_n(dense_v[b].begin() + p * kv_row, kv_row, v_cache.begin() + slot * kv_row);
    }
    query_start.push_back(query_start.back() + s.query_len);
    context_lens.push_back(s.context_len);
  }
  const int64_t tokens = query_start.back();
  // Larger q so that the softmax is far from uniform.
  const std::vector<float> q = Random(tokens * q_heads * head_dim, gen, -3.0f, 3.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  std::vector<float> out(tokens * q_heads * head_dim, kNaN);
  PagedAttention(q.data(), k_cache.data(), v_cache.data(), query_start.data(), context_lens.data(), block_tables.data(),
                 max_blocks, num_seqs, q_heads, kv_heads, head_dim, block_size, scale, out.data());

  std::vector<double> ref(out.size());
  for (int64_t b = 0; b < num_seqs; ++b) {
    DenseAttention(q, query_start[b], dense_k[b], dense_v[b], seqs[b], q_heads, kv_heads, head_dim, scale, ref);
  }
  ExpectClose(out, ref, 2e-6, 2e-5, what);
}

TEST(CpuOpsTest, PagedAttentionMatchesDenseCausalAttention) {
  // Decodes (query_len 1), a whole prompt, prefill chunks after a cached prefix, one-token contexts, contexts
  // that end exactly on and just past a block boundary.
  const std::vector<SeqShape> mixed = {{1, 1}, {1, 37}, {5, 5}, {7, 20}, {16, 16}, {3, 33}, {1, 32}, {9, 64}};
  uint32_t seed = 10;
  for (int64_t ratio : {1, 2, 4}) {
    for (int64_t kv_heads : {1, 2}) {
      for (int64_t head_dim : {4, 16, 33}) {
        for (int64_t block_size : {1, 4, 16}) {
          CheckPagedAttention(mixed, kv_heads * ratio, kv_heads, head_dim, block_size, seed++);
        }
      }
    }
  }
}

TEST(CpuOpsTest, PagedAttentionSingleSequences) {
  CheckPagedAttention({{1, 1}}, 4, 2, 8, 16, 100);
  CheckPagedAttention({{100, 100}}, 8, 2, 16, 16, 101);
  CheckPagedAttention({{1, 200}}, 2, 1, 64, 16, 102);
}

TEST(CpuOpsTest, PagedAttentionOverOneKeyReturnsItsValue) {
  // One context token: softmax weight 1, output = v exactly, for every query head of the group.
  const int64_t q_heads = 4, kv_heads = 2, d = 3, block_size = 2;
  const std::vector<float> q = {1, 2, 3, -1, -2, -3, 5, 5, 5, 0, 0, 0};
  std::vector<float> k_cache(4 * block_size * kv_heads * d, kNaN), v_cache(k_cache.size(), kNaN);
  const int32_t block = 3;
  const std::vector<float> k = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  const std::vector<float> v = {7, 8, 9, 10, 11, 12};
  std::copy(k.begin(), k.end(), k_cache.begin() + block * block_size * kv_heads * d);
  std::copy(v.begin(), v.end(), v_cache.begin() + block * block_size * kv_heads * d);
  const std::vector<int32_t> query_start = {0, 1}, context_lens = {1}, tables = {block};
  std::vector<float> out(q.size(), kNaN);
  PagedAttention(q.data(), k_cache.data(), v_cache.data(), query_start.data(), context_lens.data(), tables.data(), 1, 1,
                 q_heads, kv_heads, d, block_size, 0.5f, out.data());
  EXPECT_EQ(out, (std::vector<float>{7, 8, 9, 7, 8, 9, 10, 11, 12, 10, 11, 12}));
}

// ---------------------------------------------------------------------------------------------------------------
// SiluMul, Add, GatherRows

TEST(CpuOpsTest, SiluMulMatchesNaiveFormula) {
  std::mt19937 gen(7);
  for (int64_t tokens : {1, 3, 8}) {
    for (int64_t inter : {1, 7, 64, 129}) {
      std::vector<float> gate_up = Random(tokens * 2 * inter, gen, -8.0f, 8.0f);
      // Extreme gates: silu saturates to x for large x and to 0 for very negative x, without NaN.
      gate_up[0] = 100.0f;
      if (inter > 1) gate_up[1] = -100.0f;
      if (inter > 2) gate_up[2] = -1000.0f;
      std::vector<float> out(tokens * inter, kNaN);
      SiluMul(gate_up.data(), out.data(), tokens, inter);
      std::vector<double> ref(tokens * inter);
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t i = 0; i < inter; ++i) {
          const double g = gate_up[t * 2 * inter + i];
          const double u = gate_up[t * 2 * inter + inter + i];
          ref[t * inter + i] = g / (1.0 + std::exp(-g)) * u;
        }
      }
      ExpectClose(out, ref, 1e-6, 1e-5, "SiluMul tokens=" + std::to_string(tokens) + " inter=" + std::to_string(inter));
    }
  }
}

TEST(CpuOpsTest, AddIsElementwiseAndMayAlias) {
  std::mt19937 gen(8);
  const std::vector<float> a = Random(37, gen), b = Random(37, gen);
  std::vector<float> out(37, kNaN);
  Add(a.data(), b.data(), out.data(), 37);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(out[i], a[i] + b[i]);
  std::vector<float> in_place = a;
  Add(in_place.data(), b.data(), in_place.data(), 37);
  EXPECT_EQ(in_place, out);
}

TEST(CpuOpsTest, GatherRowsCopiesTheNamedRows) {
  std::mt19937 gen(9);
  for (int64_t cols : {1, 5, 64}) {
    const int64_t num_rows = 10;
    const std::vector<float> table = Random(num_rows * cols, gen);
    const std::vector<int32_t> rows = {9, 0, 3, 3, 7, 0};  // out of order, repeated, first and last
    std::vector<float> out(rows.size() * cols, kNaN);
    GatherRows(table.data(), rows.data(), out.data(), static_cast<int64_t>(rows.size()), cols);
    for (size_t i = 0; i < rows.size(); ++i) {
      for (int64_t c = 0; c < cols; ++c) {
        EXPECT_EQ(out[i * cols + c], table[rows[i] * cols + c]) << "row " << i << " col " << c;
      }
    }
  }
}

}  // namespace
}  // namespace octet::cpu
