// cuda::QuantizeActivationFp8 against cpu::QuantizeActivationFp8: the same codes and scales bit for bit, fp32 and
// bf16 inputs, ragged rows, and groups that hit the rule's corners (all zero, underflowing scale, saturation,
// subnormal codes, negative zero, random bit patterns over the whole exponent range).
#include "kernels/cuda/fp8_quant.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/fp8.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::Bf16ToFloat;
using testing::DeviceBuffer;
using testing::FloatToBf16;

// Values for x [tokens, in], each 128-group drawn by one of several recipes.
std::vector<float> MakeInput(int64_t tokens, int64_t in, std::mt19937_64& gen, bool bf16_exact) {
  std::vector<float> x(static_cast<size_t>(tokens * in));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<int> recipe_dist(0, 7), exp_dist(-40, 40);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i0 = 0; i0 < in; i0 += cpu::kFp8Block) {
      const int recipe = recipe_dist(gen);
      const float magnitude = std::ldexp(1.0f, exp_dist(gen));
      for (int64_t i = i0; i < std::min(in, i0 + cpu::kFp8Block); ++i) {
        float v = 0.0f;
        switch (recipe) {
          case 0:
            v = 0.0f;
            break;  // all zero: scale 1
          case 1:
            v = -0.0f;
            break;  // negative zeros: code 0x80
          case 2:
            v = normal(gen) * 1e-42f;
            break;   // amax / 448 underflows: scale 1
          case 3: {  // finite random bits: every exponent
            uint32_t u = bits(gen);
            if (((u >> 23) & 0xff) == 0xff) u &= 0xbfffffffu;
            v = std::bit_cast<float>(u);
            break;
          }
          case 4:
            v = normal(gen) * 3e38f / 5.0f;
            break;  // near FLT_MAX
          case 5:
            v = (i == i0 ? 1e6f : normal(gen));
            break;  // one outlier: many subnormal codes
          default:
            v = normal(gen) * magnitude;
            break;
        }
        if (bf16_exact) v = Bf16ToFloat(FloatToBf16(v));
        if (!std::isfinite(v)) v = 0.0f;  // the rule requires finite values
        x[static_cast<size_t>(t * in + i)] = v;
      }
    }
  }
  return x;
}

template <typename T>
void CheckShape(int64_t tokens, int64_t in, uint64_t seed) {
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  std::mt19937_64 gen(seed);
  const std::vector<float> x = MakeInput(tokens, in, gen, kBf16);
  const int64_t groups = cpu::Fp8NumBlocks(in);
  std::vector<uint8_t> q_ref(static_cast<size_t>(tokens * in));
  std::vector<float> s_ref(static_cast<size_t>(tokens * groups));
  cpu::QuantizeActivationFp8(x.data(), tokens, in, q_ref.data(), s_ref.data());

  std::vector<T> x_dev_host(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if constexpr (kBf16) {
      x_dev_host[i] = FloatToBf16(x[i]);  // exact: x is bf16-representable
    } else {
      x_dev_host[i] = x[i];
    }
  }
  DeviceBuffer<T> x_dev(x_dev_host);
  DeviceBuffer<uint8_t> q_dev(q_ref.size());
  DeviceBuffer<float> s_dev(s_ref.size());
  CUDA_CHECK(QuantizeActivationFp8<T>(x_dev.get(), tokens, in, q_dev.get(), s_dev.get(), nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint8_t> q = q_dev.Download();
  const std::vector<float> s = s_dev.Download();

  int64_t code_mismatches = 0, scale_mismatches = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i] != q_ref[i]) {
      if (code_mismatches++ < 5) {
        ADD_FAILURE() << "code at token " << i / in << " col " << i % in << ": gpu 0x" << std::hex << int{q[i]}
                      << " cpu 0x" << int{q_ref[i]} << std::dec << " x " << x[i] << " scale "
                      << s_ref[(i / in) * groups + (i % in) / cpu::kFp8Block];
      }
    }
  }
  for (size_t i = 0; i < s.size(); ++i) {
    if (std::bit_cast<uint32_t>(s[i]) != std::bit_cast<uint32_t>(s_ref[i])) {
      if (scale_mismatches++ < 5) ADD_FAILURE() << "scale " << i << ": gpu " << s[i] << " cpu " << s_ref[i];
    }
  }
  EXPECT_EQ(code_mismatches, 0) << (kBf16 ? "bf16" : "fp32") << " tokens " << tokens << " in " << in;
  EXPECT_EQ(scale_mismatches, 0) << (kBf16 ? "bf16" : "fp32") << " tokens " << tokens << " in " << in;
}

const int64_t kTokens[] = {1, 3, 8, 33};
const int64_t kIn[] = {1, 5, 127, 128, 129, 200, 1000, 5120, 6144, 17408};

TEST(Fp8QuantTest, Fp32MatchesCpuBitForBit) {
  uint64_t seed = 1;
  for (int64_t tokens : kTokens) {
    for (int64_t in : kIn) CheckShape<float>(tokens, in, seed++);
  }
}

TEST(Fp8QuantTest, Bf16MatchesCpuBitForBit) {
  uint64_t seed = 1000;
  for (int64_t tokens : kTokens) {
    for (int64_t in : kIn) CheckShape<__nv_bfloat16>(tokens, in, seed++);
  }
}

// Every E4M3 rounding tie and its neighbours: v / scale lands exactly on the midpoint between two codes, or one
// fp32 ulp either side of it, with scale exactly 1 (amax 448) so the division is exact.
TEST(Fp8QuantTest, TiesRoundToEvenCodeLikeCpu) {
  std::vector<float> x;
  for (int c = 0; c < 0x7E; ++c) {
    const float lo = cpu::Fp8E4M3ToFloat(static_cast<uint8_t>(c));
    const float hi = cpu::Fp8E4M3ToFloat(static_cast<uint8_t>(c + 1));
    const float mid = 0.5f * (lo + hi);  // exact
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      x.push_back(v);
      x.push_back(-v);
    }
  }
  const int64_t per_group = cpu::kFp8Block - 1;  // slot 0 of each group holds 448 so that scale = 1
  std::vector<float> padded;
  for (size_t i = 0; i < x.size(); i += per_group) {
    padded.push_back(448.0f);
    for (size_t k = i; k < std::min(x.size(), i + per_group); ++k) padded.push_back(x[k]);
  }
  const int64_t in = static_cast<int64_t>(padded.size());
  std::vector<uint8_t> q_ref(padded.size());
  std::vector<float> s_ref(static_cast<size_t>(cpu::Fp8NumBlocks(in)));
  cpu::QuantizeActivationFp8(padded.data(), 1, in, q_ref.data(), s_ref.data());
  DeviceBuffer<float> x_dev(padded);
  DeviceBuffer<uint8_t> q_dev(q_ref.size());
  DeviceBuffer<float> s_dev(s_ref.size());
  CUDA_CHECK(QuantizeActivationFp8<float>(x_dev.get(), 1, in, q_dev.get(), s_dev.get(), nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(q_dev.Download(), q_ref);
  EXPECT_EQ(s_dev.Download(), s_ref);
  for (float s : s_ref) EXPECT_EQ(s, 1.0f);
}

TEST(Fp8QuantTest, RejectsNegativeSizesAndAcceptsEmpty) {
  EXPECT_EQ(QuantizeActivationFp8<float>(nullptr, -1, 128, nullptr, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(QuantizeActivationFp8<float>(nullptr, 0, 128, nullptr, nullptr, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace octet::cuda
