// cuda::AddRmsNormFp8 and SiluMulFp8 (kernels/cuda/fused_norm_act.h) against kernels/cpu: the fp32 outputs within
// the stated ulps, and the FP8 copies bit for bit the codes and scales cpu::QuantizeActivationFp8 gives for the
// GPU's own fp32 output. Shapes include Qwen3.5-27B's (hidden 5120, intermediate 17408) and ragged 128-groups.
#include "kernels/cuda/fused_norm_act.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/norm.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::DeviceBuffer;

std::vector<float> Random(size_t n, uint64_t seed, float scale) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

// The FP8 copy must be exactly the quantization of the fp32 output the kernel wrote.
void ExpectFp8CopyOf(const std::vector<float>& out, int64_t rows, int64_t cols, const DeviceBuffer<uint8_t>& q,
                     const DeviceBuffer<float>& scales) {
  std::vector<uint8_t> want_q(out.size());
  std::vector<float> want_s(static_cast<size_t>(rows * cpu::Fp8NumBlocks(cols)));
  cpu::QuantizeActivationFp8(out.data(), rows, cols, want_q.data(), want_s.data());
  EXPECT_EQ(q.Download(), want_q);
  EXPECT_EQ(scales.Download(), want_s);
}

TEST(FusedNormActTest, AddRmsNormMatchesAddThenRmsNorm) {
  for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{1, 5120}, {37, 5120}, {5, 320}, {3, 200}}) {
    for (bool offset : {false, true}) {
      const std::vector<float> h = Random(rows * cols, rows + cols, 2.0f), x = Random(rows * cols, cols, 1.0f);
      const std::vector<float> w = Random(cols, 3, 0.1f);
      std::vector<float> want_h(h.size()), want(h.size());
      cpu::Add(h.data(), x.data(), want_h.data(), rows * cols);
      cpu::RmsNorm(want_h.data(), w.data(), want.data(), rows, cols, 1e-6f, offset);
      DeviceBuffer<float> d_h(h), d_x(x), d_w(w), d_out(h.size());
      DeviceBuffer<uint8_t> d_q(h.size());
      DeviceBuffer<float> d_s(static_cast<size_t>(rows * cpu::Fp8NumBlocks(cols)));
      ASSERT_EQ(AddRmsNormFp8(d_h.get(), d_x.get(), d_w.get(), d_out.get(), d_q.get(), d_s.get(), rows, cols, 1e-6f,
                              offset, nullptr),
                cudaSuccess);
      EXPECT_EQ(d_h.Download(), want_h);  // the residual add is one fp32 addition
      const std::vector<float> got = d_out.Download();
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 4e-7f * std::max(1.0f, std::abs(want[i]))) << "row-major index " << i;
      }
      ExpectFp8CopyOf(got, rows, cols, d_q, d_s);
    }
  }
}

TEST(FusedNormActTest, SiluMulMatchesCpu) {
  for (const auto& [tokens, inter] : {std::pair<int64_t, int64_t>{1, 17408}, {9, 17408}, {4, 960}, {2, 100}}) {
    const std::vector<float> gate_up = Random(tokens * 2 * inter, tokens + inter, 3.0f);
    std::vector<float> want(tokens * inter);
    cpu::SiluMul(gate_up.data(), want.data(), tokens, inter);
    DeviceBuffer<float> d_gu(gate_up), d_out(want.size());
    DeviceBuffer<uint8_t> d_q(want.size());
    DeviceBuffer<float> d_s(static_cast<size_t>(tokens * cpu::Fp8NumBlocks(inter)));
    ASSERT_EQ(SiluMulFp8(d_gu.get(), d_out.get(), d_q.get(), d_s.get(), tokens, inter, nullptr), cudaSuccess);
    const std::vector<float> got = d_out.Download();
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-6f * std::max(1.0f, std::abs(want[i]))) << i;
    }
    ExpectFp8CopyOf(got, tokens, inter, d_q, d_s);
    // Without the copy: the same fp32 output.
    DeviceBuffer<float> d_out2(want.size());
    ASSERT_EQ(SiluMulFp8(d_gu.get(), d_out2.get(), nullptr, nullptr, tokens, inter, nullptr), cudaSuccess);
    EXPECT_EQ(d_out2.Download(), got);
  }
}

}  // namespace
}  // namespace octet::cuda
