// cuda::StoreKv against cpu::StoreKv / StoreKvBf16 / StoreKvFp8: every cache byte and scale bit for bit, for the
// three cache dtypes, with skipped slots (-1), all-zero heads (fp8 scale 1), tiny and large magnitudes, and
// head_dims that are not multiples of 32.
#include "kernels/cuda/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::DeviceBuffer;

struct Shape {
  int64_t tokens, kv_heads, head_dim, num_blocks, block_size;
};

size_t ElementBytes(KvCacheDType dtype) {
  return dtype == KvCacheDType::kF32 ? 4 : dtype == KvCacheDType::kBF16 ? 2 : 1;
}

void CheckStore(KvCacheDType dtype, const Shape& s, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> recipe_dist(0, 5), exp_dist(-30, 30);
  const int64_t row = s.kv_heads * s.head_dim;
  const int64_t slots = s.num_blocks * s.block_size;
  std::vector<float> k(static_cast<size_t>(s.tokens * row)), v(k.size());
  for (std::vector<float>* x : {&k, &v}) {
    for (int64_t th = 0; th < s.tokens * s.kv_heads; ++th) {  // one recipe per (token, kv head)
      const int recipe = recipe_dist(gen);
      const float magnitude = std::ldexp(1.0f, exp_dist(gen));
      for (int64_t d = 0; d < s.head_dim; ++d) {
        float val = normal(gen);
        if (recipe == 0) val = 0.0f;                 // all-zero head: fp8 scale 1
        if (recipe == 1) val *= 1e-44f;              // amax / 448 underflows: scale 1
        if (recipe == 2) val = d == 0 ? 1e4f : val;  // an outlier: subnormal codes
        if (recipe >= 3) val *= magnitude;
        (*x)[static_cast<size_t>(th * s.head_dim + d)] = val;
      }
    }
  }
  // Distinct slots in random order, a few tokens skipped.
  std::vector<int32_t> perm(static_cast<size_t>(slots));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), gen);
  std::vector<int32_t> slot_mapping(static_cast<size_t>(s.tokens));
  std::bernoulli_distribution skip(0.2);
  for (int64_t t = 0; t < s.tokens; ++t) slot_mapping[t] = skip(gen) ? -1 : perm[static_cast<size_t>(t)];

  // Both caches start from the same random bytes, so that untouched slots must also match.
  const size_t cache_bytes = static_cast<size_t>(slots * row) * ElementBytes(dtype);
  std::vector<uint8_t> k_ref(cache_bytes), v_ref(cache_bytes);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : k_ref) b = static_cast<uint8_t>(byte(gen));
  for (auto& b : v_ref) b = static_cast<uint8_t>(byte(gen));
  std::vector<float> ks_ref(static_cast<size_t>(slots * s.kv_heads), -7.0f), vs_ref(ks_ref.size(), -9.0f);
  DeviceBuffer<uint8_t> k_cache(k_ref), v_cache(v_ref);
  DeviceBuffer<float> k_scale(ks_ref), v_scale(vs_ref);
  DeviceBuffer<float> k_dev(k), v_dev(v);
  DeviceBuffer<int32_t> slots_dev(slot_mapping);

  switch (dtype) {
    case KvCacheDType::kF32:
      cpu::StoreKv(k.data(), v.data(), slot_mapping.data(), reinterpret_cast<float*>(k_ref.data()),
                   reinterpret_cast<float*>(v_ref.data()), s.tokens, s.kv_heads, s.head_dim);
      break;
    case KvCacheDType::kBF16:
      cpu::StoreKvBf16(k.data(), v.data(), slot_mapping.data(), reinterpret_cast<uint16_t*>(k_ref.data()),
                       reinterpret_cast<uint16_t*>(v_ref.data()), s.tokens, s.kv_heads, s.head_dim);
      break;
    case KvCacheDType::kFp8E4M3:
      cpu::StoreKvFp8(k.data(), v.data(), slot_mapping.data(), k_ref.data(), v_ref.data(), ks_ref.data(), vs_ref.data(),
                      s.tokens, s.kv_heads, s.head_dim);
      break;
  }
  const bool fp8 = dtype == KvCacheDType::kFp8E4M3;
  CUDA_CHECK(StoreKv(k_dev.get(), v_dev.get(), slots_dev.get(), s.tokens, s.kv_heads, s.head_dim, dtype, k_cache.get(),
                     v_cache.get(), fp8 ? k_scale.get() : nullptr, fp8 ? v_scale.get() : nullptr, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::string where = "dtype " + std::to_string(static_cast<int>(dtype)) + " tokens " + std::to_string(s.tokens) +
                            " kv_heads " + std::to_string(s.kv_heads) + " head_dim " + std::to_string(s.head_dim);
  EXPECT_TRUE(k_cache.Download() == k_ref) << "k cache, " << where;
  EXPECT_TRUE(v_cache.Download() == v_ref) << "v cache, " << where;
  const std::vector<float> ks = k_scale.Download(), vs = v_scale.Download();
  EXPECT_EQ(0, std::memcmp(ks.data(), ks_ref.data(), ks.size() * sizeof(float))) << "k scales, " << where;
  EXPECT_EQ(0, std::memcmp(vs.data(), vs_ref.data(), vs.size() * sizeof(float))) << "v scales, " << where;
}

const Shape kShapes[] = {
    {1, 1, 8, 1, 4},    {5, 2, 16, 3, 4},  {17, 4, 128, 4, 16}, {33, 4, 256, 5, 16},
    {9, 1, 256, 3, 16}, {7, 3, 200, 4, 4}, {40, 8, 64, 3, 16},  {6, 2, 5, 2, 4},
};

TEST(KvCacheTest, F32MatchesCpuBitForBit) {
  uint64_t seed = 1;
  for (const Shape& s : kShapes) CheckStore(KvCacheDType::kF32, s, seed++);
}

TEST(KvCacheTest, Bf16MatchesCpuBitForBit) {
  uint64_t seed = 100;
  for (const Shape& s : kShapes) CheckStore(KvCacheDType::kBF16, s, seed++);
}

TEST(KvCacheTest, Fp8MatchesCpuBitForBit) {
  uint64_t seed = 200;
  for (const Shape& s : kShapes) CheckStore(KvCacheDType::kFp8E4M3, s, seed++);
}

TEST(KvCacheTest, RejectsBadArgsAndAcceptsEmpty) {
  EXPECT_EQ(
      StoreKv(nullptr, nullptr, nullptr, -1, 1, 8, KvCacheDType::kF32, nullptr, nullptr, nullptr, nullptr, nullptr),
      cudaErrorInvalidValue);
  EXPECT_EQ(
      StoreKv(nullptr, nullptr, nullptr, 0, 1, 8, KvCacheDType::kF32, nullptr, nullptr, nullptr, nullptr, nullptr),
      cudaSuccess);
  DeviceBuffer<float> x(8);
  DeviceBuffer<int32_t> slot(std::vector<int32_t>{0});
  DeviceBuffer<uint8_t> cache(8);
  EXPECT_EQ(StoreKv(x.get(), x.get(), slot.get(), 1, 1, 8, KvCacheDType::kFp8E4M3, cache.get(), cache.get(), nullptr,
                    nullptr, nullptr),
            cudaErrorInvalidValue);
}

}  // namespace
}  // namespace octet::cuda
