// cuda:: Gated DeltaNet ops against their kernels/cpu references on random data: CausalConv1dSilu and
// GatedDeltaRule over batches that mix fresh and continuing sequences, decode (1 token) and prefill chunks (up to
// 300 tokens), permuted state slots and an empty sequence, two calls in a row to carry the state; GdnGates and
// RmsNormGated (also in place) elementwise. Tolerances are those stated in kernels/cuda/gated_delta.h.
#include "kernels/cuda/gated_delta.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/gated_delta.h"
#include "kernels/cpu/norm.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::DeviceBuffer;
using testing::ParallelFor;

std::vector<float> Random(size_t n, std::mt19937_64& gen, float mean, float stddev) {
  std::vector<float> v(n);
  std::normal_distribution<float> normal(mean, stddev);
  for (auto& e : v) e = normal(gen);
  return v;
}

// Rows of [rows, cols] whose relative L2 error ||gpu - ref|| / max(||ref||, floor) exceeds tol: counted, the first
// few reported.
void ExpectRowsClose(const std::vector<float>& gpu, const std::vector<float>& ref, int64_t cols, double tol,
                     const std::string& what, double floor = 1e-20) {
  ASSERT_EQ(gpu.size(), ref.size()) << what;
  const int64_t rows = static_cast<int64_t>(ref.size()) / cols;
  int64_t bad = 0;
  double worst = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    double err = 0.0, norm = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const double g = gpu[r * cols + c], e = ref[r * cols + c];
      err += (g - e) * (g - e);
      norm += e * e;
    }
    const double rel = std::sqrt(err) / std::max(std::sqrt(norm), floor);
    worst = std::max(worst, std::isnan(rel) ? 1e30 : rel);
    if (!(rel <= tol) && bad++ < 5) {
      ADD_FAILURE() << what << ": row " << r << " relative error " << rel << " (tolerance " << tol << "), gpu[0] "
                    << gpu[r * cols] << " cpu[0] " << ref[r * cols];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << rows << " rows over tolerance, worst " << worst;
  std::printf("  %s: worst row relative error %.3g\n", what.c_str(), worst);
}

// A batch of sequences: query_start, context_lens, state_slots.
struct Seq {
  int32_t len;
  bool fresh;
};

struct Batch {
  std::vector<int32_t> query_start, context_lens, slots;
  int64_t tokens = 0;
  int32_t max_len = 0;
};

Batch MakeBatch(const std::vector<Seq>& seqs, const std::vector<int32_t>& slots, std::mt19937_64& gen) {
  std::uniform_int_distribution<int32_t> history(1, 2000);
  Batch batch;
  batch.query_start.push_back(0);
  for (const Seq& s : seqs) {
    batch.query_start.push_back(batch.query_start.back() + s.len);
    batch.context_lens.push_back(s.fresh ? s.len : s.len + history(gen));
    batch.max_len = std::max(batch.max_len, s.len);
  }
  batch.slots.assign(slots.begin(), slots.begin() + static_cast<std::ptrdiff_t>(seqs.size()));
  batch.tokens = batch.query_start.back();
  return batch;
}

std::vector<int32_t> PermutedSlots(int64_t num_slots, std::mt19937_64& gen) {
  std::vector<int32_t> slots(static_cast<size_t>(num_slots));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), gen);
  return slots;
}

// Two calls: the first mixes fresh and continuing sequences, decode and prefill; the second continues them (one
// restarts fresh in a slot holding an old state, one has no tokens).
const std::vector<Seq> kCall1 = {{1, true}, {1, false}, {5, false}, {300, true}, {64, false}, {1, false}, {2, true}};
const std::vector<Seq> kCall2 = {{1, false}, {3, false}, {1, false}, {17, false}, {0, false}, {1, true}, {130, false}};

// ---------------------------------------------------------------------------------------------------------------

void CheckConv(int64_t channels, int64_t kernel, uint64_t seed) {
  SCOPED_TRACE("channels " + std::to_string(channels) + " kernel " + std::to_string(kernel));
  std::mt19937_64 gen(seed);
  const int64_t hist = kernel - 1;
  const int64_t num_slots = static_cast<int64_t>(kCall1.size()) + 3;
  const std::vector<int32_t> slots = PermutedSlots(num_slots, gen);
  const std::vector<float> w = Random(static_cast<size_t>(channels * kernel), gen, 0.0f, 0.5f);
  std::vector<float> state = Random(static_cast<size_t>(num_slots * channels * hist), gen, 0.0f, 1.0f);
  DeviceBuffer<float> w_dev(w), state_dev(state);
  for (int call = 0; call < 2; ++call) {
    const Batch batch = MakeBatch(call == 0 ? kCall1 : kCall2, slots, gen);
    const int64_t num_seqs = static_cast<int64_t>(batch.slots.size());
    const std::vector<float> x = Random(static_cast<size_t>(batch.tokens * channels), gen, 0.0f, 1.0f);
    std::vector<float> out(x.size());
    cpu::CausalConv1dSilu(x.data(), w.data(), batch.query_start.data(), batch.context_lens.data(), batch.slots.data(),
                          num_seqs, channels, kernel, state.data(), out.data());
    DeviceBuffer<float> x_dev(x), out_dev(out.size());
    DeviceBuffer<int32_t> qs_dev(batch.query_start), ctx_dev(batch.context_lens), slots_dev(batch.slots);
    CUDA_CHECK(CausalConv1dSilu(x_dev.get(), w_dev.get(), qs_dev.get(), ctx_dev.get(), slots_dev.get(), num_seqs,
                                batch.tokens, channels, kernel, state_dev.get(), out_dev.get(), nullptr));
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::string tag = "conv call " + std::to_string(call + 1);
    ExpectRowsClose(out_dev.Download(), out, channels, 2e-6, tag + " out");
    EXPECT_EQ(state_dev.Download(), state) << tag << " state (copies: exact)";
    state_dev.Upload(state);  // the next call starts from the CPU's state either way
  }
}

TEST(GatedDeltaTest, CausalConv1dSiluMatchesCpu) {
  uint64_t seed = 1;
  for (int64_t channels : {1, 8, 37, 300}) {
    for (int64_t kernel : {1, 2, 4}) CheckConv(channels, kernel, seed++);
  }
  CheckConv(10240, 4, seed++);  // Qwen3.5-27B
}

// ---------------------------------------------------------------------------------------------------------------

TEST(GatedDeltaTest, GdnGatesMatchCpu) {
  std::mt19937_64 gen(7);
  for (int64_t heads : {1, 5, 48}) {
    const int64_t tokens = 301;
    const auto a = Random(static_cast<size_t>(tokens * heads), gen, 0.0f, 8.0f);  // softplus both sides of 20
    const auto b = Random(a.size(), gen, 0.0f, 4.0f);
    const auto a_log = Random(static_cast<size_t>(heads), gen, 0.0f, 1.0f);
    const auto dt_bias = Random(static_cast<size_t>(heads), gen, 0.0f, 2.0f);
    std::vector<float> g(a.size()), beta(a.size());
    cpu::GdnGates(a.data(), b.data(), a_log.data(), dt_bias.data(), tokens, heads, g.data(), beta.data());
    DeviceBuffer<float> a_dev(a), b_dev(b), a_log_dev(a_log), dt_dev(dt_bias), g_dev(g.size()), beta_dev(g.size());
    CUDA_CHECK(GdnGates(a_dev.get(), b_dev.get(), a_log_dev.get(), dt_dev.get(), tokens, heads, g_dev.get(),
                        beta_dev.get(), nullptr));
    CUDA_CHECK(cudaDeviceSynchronize());
    ExpectRowsClose(g_dev.Download(), g, 1, 4e-6, "g heads " + std::to_string(heads), 1e-30);
    ExpectRowsClose(beta_dev.Download(), beta, 1, 4e-6, "beta heads " + std::to_string(heads), 1e-30);
  }
}

// ---------------------------------------------------------------------------------------------------------------

struct GdnShape {
  int64_t k_heads, v_heads, k_dim, v_dim;
};

constexpr double kGdnOutTolerance = 3e-5, kGdnStateTolerance = 1e-5;

void CheckGatedDelta(const GdnShape& sh, uint64_t seed) {
  SCOPED_TRACE("k_heads " + std::to_string(sh.k_heads) + " v_heads " + std::to_string(sh.v_heads) + " k_dim " +
               std::to_string(sh.k_dim) + " v_dim " + std::to_string(sh.v_dim));
  std::mt19937_64 gen(seed);
  const int64_t row = 2 * sh.k_heads * sh.k_dim + sh.v_heads * sh.v_dim;
  const int64_t mat = sh.k_dim * sh.v_dim;
  const int64_t num_slots = static_cast<int64_t>(kCall1.size()) + 3;
  const std::vector<int32_t> slots = PermutedSlots(num_slots, gen);
  std::vector<float> state = Random(static_cast<size_t>(num_slots * sh.v_heads * mat), gen, 0.0f, 0.3f);
  DeviceBuffer<float> state_dev(state);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int call = 0; call < 2; ++call) {
    const Batch batch = MakeBatch(call == 0 ? kCall1 : kCall2, slots, gen);
    const int64_t num_seqs = static_cast<int64_t>(batch.slots.size());
    const std::vector<float> qkv = Random(static_cast<size_t>(batch.tokens * row), gen, 0.0f, 1.0f);
    std::vector<float> g(static_cast<size_t>(batch.tokens * sh.v_heads)), beta(g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      const float r = unit(gen);
      g[i] = -2.0f * r * r;  // decays exp(g) in [0.14, 1], most near 1 (long memory)
      beta[i] = unit(gen);
    }
    std::vector<float> out(static_cast<size_t>(batch.tokens * sh.v_heads * sh.v_dim));
    ParallelFor(num_seqs, [&](int64_t b0, int64_t b1) {  // sequences touch disjoint slots and rows
      for (int64_t b = b0; b < b1; ++b) {
        cpu::GatedDeltaRule(qkv.data(), g.data(), beta.data(), batch.query_start.data() + b,
                            batch.context_lens.data() + b, batch.slots.data() + b, 1, sh.k_heads, sh.v_heads, sh.k_dim,
                            sh.v_dim, state.data(), out.data());
      }
    });
    DeviceBuffer<float> qkv_dev(qkv), g_dev(g), beta_dev(beta), out_dev(out.size());
    DeviceBuffer<int32_t> qs_dev(batch.query_start), ctx_dev(batch.context_lens), slots_dev(batch.slots);
    CUDA_CHECK(GatedDeltaRule(qkv_dev.get(), g_dev.get(), beta_dev.get(), qs_dev.get(), ctx_dev.get(), slots_dev.get(),
                              num_seqs, batch.tokens, batch.max_len, sh.k_heads, sh.v_heads, sh.k_dim, sh.v_dim,
                              state_dev.get(), out_dev.get(), nullptr));
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::string tag = "gdn call " + std::to_string(call + 1);
    ExpectRowsClose(out_dev.Download(), out, sh.v_dim, kGdnOutTolerance, tag + " out");
    // Per (slot, head) state matrix; untouched slots must come back as they were (exactly, within the tolerance).
    ExpectRowsClose(state_dev.Download(), state, mat, kGdnStateTolerance, tag + " state");
    // The second call continues from the GPU's own state (the carried state is what is being tested).
  }
}

TEST(GatedDeltaTest, GatedDeltaRuleSmallShapesMatchCpu) {
  uint64_t seed = 100;
  for (const GdnShape& sh : {GdnShape{1, 1, 8, 8}, GdnShape{2, 4, 16, 32}, GdnShape{2, 2, 32, 16},
                             GdnShape{1, 3, 24, 40}, GdnShape{2, 2, 100, 72}, GdnShape{1, 2, 256, 256}}) {
    CheckGatedDelta(sh, seed++);
  }
}

TEST(GatedDeltaTest, GatedDeltaRuleQwen35ShapeMatchesCpu) { CheckGatedDelta(GdnShape{16, 48, 128, 128}, 200); }

TEST(GatedDeltaTest, GatedDeltaRuleRejectsBadShapes) {
  EXPECT_EQ(GatedDeltaRule(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1, 1, 1, 2, 3, 8, 8, nullptr, nullptr,
                           nullptr),
            cudaErrorInvalidValue);  // v_heads not a multiple of k_heads
  EXPECT_EQ(GatedDeltaRule(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 1, 1, 1, 1, 1, 257, 8, nullptr,
                           nullptr, nullptr),
            cudaErrorInvalidValue);  // k_dim > 256
  EXPECT_EQ(GatedDeltaRule(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, 0, 0, 1, 1, 8, 8, nullptr, nullptr,
                           nullptr),
            cudaSuccess);  // nothing to do
}

// ---------------------------------------------------------------------------------------------------------------

void CheckRmsNormGated(int64_t rows, int64_t cols, bool in_place, uint64_t seed) {
  SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols) + (in_place ? " in place" : ""));
  std::mt19937_64 gen(seed);
  const float eps = 1e-6f;
  const auto x = Random(static_cast<size_t>(rows * cols), gen, 0.0f, 1.0f);
  const auto z = Random(x.size(), gen, 0.0f, 3.0f);
  const auto w = Random(static_cast<size_t>(cols), gen, 1.0f, 0.2f);
  std::vector<float> out(x.size());
  cpu::RmsNormGated(x.data(), z.data(), w.data(), out.data(), rows, cols, eps);
  DeviceBuffer<float> x_dev(x), z_dev(z), w_dev(w), out_dev(in_place ? 0 : x.size());
  float* out_ptr = in_place ? x_dev.get() : out_dev.get();
  CUDA_CHECK(RmsNormGated(x_dev.get(), z_dev.get(), w_dev.get(), out_ptr, rows, cols, eps, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  ExpectRowsClose(in_place ? x_dev.Download() : out_dev.Download(), out, cols, 2e-6, "rms_norm_gated");
}

TEST(GatedDeltaTest, RmsNormGatedMatchesCpu) {
  uint64_t seed = 300;
  for (int64_t rows : {1, 7, 48 * 33}) {
    for (int64_t cols : {8, 100, 128, 5120}) {
      for (bool in_place : {false, true}) CheckRmsNormGated(rows, cols, in_place, seed++);
    }
  }
}

}  // namespace
}  // namespace octet::cuda
