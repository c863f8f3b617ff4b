// The small fp32 ops (kernels/cuda/elementwise.h) and the dense linear layer (linear_dense.h) against their
// kernels/cpu references on random data, over shapes that include Qwen3.5-27B's.
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/dense_gemm_lt.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/linear_dense.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::Bf16ToFloat;
using testing::DeviceBuffer;
using testing::FloatToBf16;

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

// Elementwise ops whose only difference from the CPU is libm's last bits (expf, sinf, cosf, powf): a few ulp.
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, float rel, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], rel * std::max(1.0f, std::abs(want[i]))) << what << " at " << i;
  }
}

TEST(ElementwiseTest, GatherRowsIsExact) {
  const int64_t vocab = 1000, cols = 5120, n = 37;
  const std::vector<float> table = Random(vocab * cols, 1);
  std::vector<int32_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = static_cast<int32_t>((i * 7919) % vocab);
  std::vector<float> want(n * cols);
  cpu::GatherRows(table.data(), rows.data(), want.data(), n, cols);
  DeviceBuffer<float> d_table(table), d_out(n * cols);
  DeviceBuffer<int32_t> d_rows(rows);
  ASSERT_EQ(GatherRows(d_table.get(), d_rows.get(), d_out.get(), n, cols, nullptr), cudaSuccess);
  EXPECT_EQ(d_out.Download(), want);
  // bf16 tables widen exactly.
  std::vector<__nv_bfloat16> table16(table.size());
  std::vector<float> table16_f(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    table16[i] = FloatToBf16(table[i]);
    table16_f[i] = Bf16ToFloat(table16[i]);
  }
  cpu::GatherRows(table16_f.data(), rows.data(), want.data(), n, cols);
  DeviceBuffer<__nv_bfloat16> d_table16(table16);
  ASSERT_EQ(GatherRows(d_table16.get(), d_rows.get(), d_out.get(), n, cols, nullptr), cudaSuccess);
  EXPECT_EQ(d_out.Download(), want);
}

TEST(ElementwiseTest, RmsNormMatchesCpu) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 5120}, {77, 5120}, {24 * 9, 256}, {300, 16}}) {
    for (bool offset : {false, true}) {
      const std::vector<float> x = Random(rows * cols, rows + cols, 3.0f), w = Random(cols, 5, 0.2f);
      std::vector<float> want(rows * cols);
      cpu::RmsNorm(x.data(), w.data(), want.data(), rows, cols, 1e-6f, offset);
      DeviceBuffer<float> d_x(x), d_w(w), d_out(rows * cols);
      ASSERT_EQ(RmsNormF32(d_x.get(), d_w.get(), d_out.get(), rows, cols, 1e-6f, offset, nullptr), cudaSuccess);
      ExpectClose(d_out.Download(), want, 4e-7f, "RmsNorm");
      // In place, as the q/k norms are applied.
      ASSERT_EQ(RmsNormF32(d_x.get(), d_w.get(), d_x.get(), rows, cols, 1e-6f, offset, nullptr), cudaSuccess);
      ExpectClose(d_x.Download(), want, 4e-7f, "RmsNorm in place");
    }
  }
}

TEST(ElementwiseTest, RopeMatchesCpu) {
  // Qwen3.5-27B's partial RoPE (64 of 256 dims, theta 1e7) and Qwen3's full one (128 of 128, theta 1e6).
  struct Case {
    int64_t heads, head_dim, rotary_dim;
    float theta;
  };
  for (const Case c :
       {Case{24, 256, 64, 1e7f}, Case{4, 256, 64, 1e7f}, Case{64, 128, 128, 1e6f}, Case{3, 16, 8, 1e4f}}) {
    const int64_t tokens = 50;
    std::vector<int32_t> positions(tokens);
    for (int64_t t = 0; t < tokens; ++t) positions[t] = static_cast<int32_t>(t * t * 13 % 40000);
    const std::vector<float> x = Random(tokens * c.heads * c.head_dim, 9);
    std::vector<float> want = x;
    cpu::Rope(want.data(), positions.data(), tokens, c.heads, c.head_dim, c.rotary_dim, c.theta);
    DeviceBuffer<float> d_x(x);
    DeviceBuffer<int32_t> d_pos(positions);
    ASSERT_EQ(Rope(d_x.get(), d_pos.get(), tokens, c.heads, c.head_dim, c.rotary_dim, c.theta, nullptr), cudaSuccess);
    // Angles up to 4e4 radians; cos and sin are taken in double on the GPU (CUDA's cosf/sinf differed from the
    // host's by up to 1.2e-5 here on an H200), so only rare double roundings remain.
    ExpectClose(d_x.Download(), want, 2e-6f, "Rope");
  }
}

TEST(ElementwiseTest, GatesAndActivationsMatchCpu) {
  const int64_t tokens = 33, inter = 17408, heads = 24, head_dim = 256;
  const std::vector<float> gate_up = Random(tokens * 2 * inter, 21, 4.0f);
  std::vector<float> want(tokens * inter);
  cpu::SiluMul(gate_up.data(), want.data(), tokens, inter);
  DeviceBuffer<float> d_gu(gate_up), d_out(tokens * inter);
  ASSERT_EQ(SiluMul(d_gu.get(), d_out.get(), tokens, inter, nullptr), cudaSuccess);
  ExpectClose(d_out.Download(), want, 1e-6f, "SiluMul");

  const std::vector<float> qg = Random(tokens * heads * 2 * head_dim, 22);
  std::vector<float> q(tokens * heads * head_dim), gate(q.size());
  cpu::SplitQueryGate(qg.data(), q.data(), gate.data(), tokens, heads, head_dim);
  DeviceBuffer<float> d_qg(qg), d_q(q.size()), d_gate(q.size());
  ASSERT_EQ(SplitQueryGate(d_qg.get(), d_q.get(), d_gate.get(), tokens * heads, head_dim, nullptr), cudaSuccess);
  EXPECT_EQ(d_q.Download(), q);
  EXPECT_EQ(d_gate.Download(), gate);

  std::vector<float> gated(q.size());
  cpu::SigmoidGate(q.data(), gate.data(), gated.data(), static_cast<int64_t>(q.size()));
  ASSERT_EQ(SigmoidGate(d_q.get(), d_gate.get(), d_q.get(), static_cast<int64_t>(q.size()), nullptr), cudaSuccess);
  ExpectClose(d_q.Download(), gated, 1e-6f, "SigmoidGate");

  std::vector<float> sum(q.size());
  cpu::Add(q.data(), gate.data(), sum.data(), static_cast<int64_t>(q.size()));
  DeviceBuffer<float> d_a(q), d_b(gate);
  ASSERT_EQ(Add(d_a.get(), d_b.get(), d_a.get(), static_cast<int64_t>(q.size()), nullptr), cudaSuccess);
  EXPECT_EQ(d_a.Download(), sum);
}

// Dense linear: the fp32 sums differ from the CPU's in order only: |got - want| <= 1e-5 * sum |x w| per output.
template <typename W>
void CheckLinearDense(int64_t tokens, int64_t in, int64_t out_features, bool lt = false) {
  const std::vector<float> x = Random(tokens * in, tokens + in);
  std::vector<float> w = Random(out_features * in, out_features, 0.05f);
  std::vector<W> w_dev(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    if constexpr (std::is_same_v<W, float>) {
      w_dev[i] = w[i];
    } else {
      w_dev[i] = FloatToBf16(w[i]);
      w[i] = Bf16ToFloat(w_dev[i]);
    }
  }
  std::vector<float> want(tokens * out_features), abs_sum(tokens * out_features);
  cpu::Linear(x.data(), w.data(), want.data(), tokens, in, out_features);
  std::vector<float> ax(x.size()), aw(w.size());
  for (size_t i = 0; i < x.size(); ++i) ax[i] = std::abs(x[i]);
  for (size_t i = 0; i < w.size(); ++i) aw[i] = std::abs(w[i]);
  cpu::Linear(ax.data(), aw.data(), abs_sum.data(), tokens, in, out_features);
  DeviceBuffer<float> d_x(x), d_y(tokens * out_features);
  DeviceBuffer<W> d_w(w_dev);
  if constexpr (std::is_same_v<W, __nv_bfloat16>) {
    if (lt) {
      DenseGemmLt gemm;
      DeviceBuffer<uint8_t> workspace(DenseGemmLt::WorkspaceBytes(tokens, in, out_features));
      ASSERT_EQ(gemm.Run(d_x.get(), d_w.get(), d_y.get(), tokens, in, out_features, workspace.get(), workspace.size(),
                         nullptr),
                cudaSuccess);
    }
  }
  if (!lt) {
    ASSERT_EQ(LinearDense(d_x.get(), d_w.get(), d_y.get(), tokens, in, out_features, nullptr), cudaSuccess);
  }
  const std::vector<float> got = d_y.Download();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5f * abs_sum[i]) << tokens << "x" << in << "x" << out_features << " at " << i;
  }
}

TEST(LinearDenseTest, MatchesCpuF32) {
  for (int64_t tokens : {1, 3, 8, 9, 64, 130}) CheckLinearDense<float>(tokens, 320, 200);
  CheckLinearDense<float>(2, 5120, 48);  // Gated DeltaNet in_proj_a/b
}

TEST(LinearDenseTest, MatchesCpuBf16) {
  for (int64_t tokens : {1, 5, 8, 17, 100}) CheckLinearDense<__nv_bfloat16>(tokens, 5120, 300);
  CheckLinearDense<__nv_bfloat16>(1, 5120, 248320 / 16);  // an LM-head slice
}

// The split-bf16 tensor-core GEMM (dense_gemm_lt.h) keeps fp32 precision of the activations: the same bound.
TEST(DenseGemmLtTest, MatchesCpuAtFp32Precision) {
  for (int64_t tokens : {1, 9, 64, 300}) CheckLinearDense<__nv_bfloat16>(tokens, 5120, 2048, /*lt=*/true);
  CheckLinearDense<__nv_bfloat16>(32, 5120, 248320 / 8, /*lt=*/true);  // an LM-head slice over a decode batch
}

}  // namespace
}  // namespace octet::cuda
