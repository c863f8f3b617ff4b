// cuda::Fp8Gemv against cpu::LinearFp8 for 1..8 tokens over ragged shapes and Qwen3.5-27B's projections.
//
// Tolerance (fp8_gemv.h): both sides sum the same exact products in different fp32 orders, so each output must be
// within (K/128 + K/512 + 40) * 2^-24 * A, A = sum_g fl(xs * ws)_g * sum_{i in g} |dec(xq_i) dec(wq_i)| (a
// first-order bound of the two summations' rounding), and outputs of >= 4096 values within 4e-6 of the reference in
// relative L2 norm (expected: a few 2^-24; the CPU's own sequential sum over K/128 groups contributes as much).
// Also: every output written (outputs are poisoned with NaN first), bf16 output = RNE of the fp32 one for the same
// path and split, the same bits on a second run, both paths (tensor core, FMA), every split of K (1, 2, 4, 8), every
// one-token tile shape of the FMA path, and the byte path (K % 16 != 0, unaligned).
#include "kernels/cuda/fp8_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/linear.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::Bf16Bits;
using testing::Bf16ToFloat;
using testing::DeviceBuffer;
using testing::FloatToBf16;
using testing::ParallelFor;

constexpr double kU = 0x1p-24;

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// E4M3 codes distributed as a block-quantized normal weight: normal samples with 448 at about 4 sigma.
const std::vector<uint8_t>& CodeTable() {
  static const std::vector<uint8_t> table = [] {
    std::mt19937_64 gen(42);
    std::normal_distribution<float> normal(0.0f, 112.0f);
    std::vector<uint8_t> t(1 << 16);
    for (auto& c : t) c = cpu::FloatToFp8E4M3(normal(gen));
    return t;
  }();
  return table;
}

struct Problem {
  int64_t tokens, in, out_features, groups;
  std::vector<uint8_t> xq, wq;
  std::vector<float> xs, ws;
  std::vector<float> ref;       // cpu::LinearFp8 [tokens, out]
  std::vector<double> abs_sum;  // A per output [tokens, out]
};

Problem MakeProblem(int64_t tokens, int64_t in, int64_t out_features, uint64_t seed) {
  Problem p{tokens, in, out_features, cpu::Fp8NumBlocks(in), {}, {}, {}, {}, {}, {}};
  const auto& table = CodeTable();
  p.wq.resize(static_cast<size_t>(out_features * in));
  ParallelFor(out_features, [&](int64_t o0, int64_t o1) {
    uint64_t state = seed * 0x100000001b3ull + static_cast<uint64_t>(o0);
    for (size_t i = static_cast<size_t>(o0 * in); i < static_cast<size_t>(o1 * in); ++i) {
      p.wq[i] = table[SplitMix(state) & 0xffff];
    }
  });
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> log_scale(-12.0f, -6.0f);
  p.ws.resize(static_cast<size_t>(cpu::Fp8NumBlocks(out_features) * p.groups));
  for (float& s : p.ws) s = std::exp2(log_scale(gen));
  // Activations: a normal token with a few outliers, quantized by the reference.
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(tokens * in));
  for (float& v : x) v = normal(gen) * (SplitMix(seed) % 97 == 0 ? 30.0f : 1.0f);
  p.xq.resize(x.size());
  p.xs.resize(static_cast<size_t>(tokens * p.groups));
  cpu::QuantizeActivationFp8(x.data(), tokens, in, p.xq.data(), p.xs.data());

  // Reference and A, in parallel over 128-row blocks (LinearFp8 on a row block is LinearFp8 on those rows).
  p.ref.assign(static_cast<size_t>(tokens * out_features), 0.0f);
  p.abs_sum.assign(p.ref.size(), 0.0);
  const int64_t row_blocks = cpu::Fp8NumBlocks(out_features);
  ParallelFor(row_blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> part;
    std::vector<double> xd(static_cast<size_t>(tokens * in));
    for (size_t i = 0; i < xd.size(); ++i) xd[i] = std::fabs(cpu::Fp8E4M3ToFloat(p.xq[i]));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o0 = b * cpu::kFp8Block, n = std::min(cpu::kFp8Block, out_features - o0);
      part.assign(static_cast<size_t>(tokens * n), 0.0f);
      cpu::LinearFp8(p.xq.data(), p.xs.data(), p.wq.data() + o0 * in, p.ws.data() + b * p.groups, part.data(), tokens,
                     in, n);
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t o = 0; o < n; ++o) {
          p.ref[static_cast<size_t>(t * out_features + o0 + o)] = part[static_cast<size_t>(t * n + o)];
          const uint8_t* wr = p.wq.data() + (o0 + o) * in;
          const double* xr = xd.data() + t * in;
          double a = 0.0;
          for (int64_t g = 0; g < p.groups; ++g) {
            double s = 0.0;
            for (int64_t i = g * cpu::kFp8Block; i < std::min(in, (g + 1) * cpu::kFp8Block); ++i) {
              s += xr[i] * std::fabs(cpu::Fp8E4M3ToFloat(wr[i]));
            }
            a += s * static_cast<double>(p.xs[static_cast<size_t>(t * p.groups + g)] *
                                         p.ws[static_cast<size_t>(b * p.groups + g)]);
          }
          p.abs_sum[static_cast<size_t>(t * out_features + o0 + o)] = a;
        }
      }
    }
  });
  return p;
}

struct DeviceProblem {
  explicit DeviceProblem(const Problem& p) : xq(p.xq), wq(p.wq), xs(p.xs), ws(p.ws) {}
  DeviceBuffer<uint8_t> xq, wq;
  DeviceBuffer<float> xs, ws;
};

template <typename OutT>
std::vector<OutT> RunGemv(const Problem& p, const DeviceProblem& d, Fp8GemvPath path, int split,
                          const uint8_t* wq = nullptr, int variant = 0) {
  DeviceBuffer<OutT> y(static_cast<size_t>(p.tokens * p.out_features));  // poisoned
  Fp8GemvOptions options;
  options.path = path;
  options.split = split;
  options.variant = variant;
  CUDA_CHECK(Fp8Gemv<OutT>(d.xq.get(), d.xs.get(), wq != nullptr ? wq : d.wq.get(), d.ws.get(), y.get(), p.tokens, p.in,
                           p.out_features, nullptr, options));
  CUDA_CHECK(cudaDeviceSynchronize());
  return y.Download();
}

struct ErrorStats {
  double rel_l2;       // ||gpu - cpu|| / ||cpu||
  double worst_ratio;  // max over outputs of |gpu - cpu| / bound
};

// The tolerance check for fp32 outputs. The relative L2 error is checked where there are enough outputs for it to be
// a statistic (a few outputs with heavy cancellation can have any relative error within the bound).
ErrorStats CheckAgainstReference(const Problem& p, const std::vector<float>& y, const std::string& what) {
  const double factor = static_cast<double>(p.in) / 128.0 + static_cast<double>(p.in) / 512.0 + 40.0;
  double err2 = 0.0, ref2 = 0.0, worst_ratio = 0.0;
  int64_t failures = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double ref = p.ref[i], got = y[i];
    const double bound = factor * kU * p.abs_sum[i];
    const double err = std::fabs(got - ref);
    if (!(err <= bound)) {  // NaN (unwritten output) fails too
      if (failures++ < 5) {
        ADD_FAILURE() << what << ": output (token " << i / p.out_features << ", row " << i % p.out_features << ") gpu "
                      << got << " cpu " << ref << " err " << err << " bound " << bound;
      }
    }
    if (bound > 0) worst_ratio = std::max(worst_ratio, err / bound);
    err2 += (got - ref) * (got - ref);
    ref2 += ref * ref;
  }
  EXPECT_EQ(failures, 0) << what;
  const double rel_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  if (y.size() >= 4096) {
    EXPECT_LE(rel_l2, 4e-6) << what;
  }
  return {rel_l2, worst_ratio};
}

std::string Name(const Problem& p, const char* extra) {
  return "M=" + std::to_string(p.tokens) + " N=" + std::to_string(p.out_features) + " K=" + std::to_string(p.in) + " " +
         extra;
}

const char* PathName(Fp8GemvPath path) { return path == Fp8GemvPath::kFma ? "fma" : "tensor core"; }

// Both paths, every split and both output types on one problem, plus determinism of the default.
void CheckAllPaths(const Problem& p) {
  const DeviceProblem d(p);
  const auto y_auto = RunGemv<float>(p, d, Fp8GemvPath::kAuto, 0);
  CheckAgainstReference(p, y_auto, Name(p, "default"));
  const auto y_again = RunGemv<float>(p, d, Fp8GemvPath::kAuto, 0);
  EXPECT_EQ(0, std::memcmp(y_auto.data(), y_again.data(), y_auto.size() * sizeof(float))) << Name(p, "rerun");
  for (Fp8GemvPath path : {Fp8GemvPath::kTensorCore, Fp8GemvPath::kFma}) {
    for (int split : {1, 2, 4, 8}) {
      const std::string what = std::string(PathName(path)) + " split " + std::to_string(split);
      const auto y = RunGemv<float>(p, d, path, split);
      CheckAgainstReference(p, y, Name(p, what.c_str()));
      const auto yb = RunGemv<__nv_bfloat16>(p, d, path, split);
      int64_t bad = 0;
      for (size_t i = 0; i < y.size(); ++i) bad += Bf16Bits(yb[i]) != Bf16Bits(FloatToBf16(y[i]));
      EXPECT_EQ(bad, 0) << Name(p, (what + " bf16").c_str());
    }
  }
  if (p.tokens == 1) {  // every one-token tile shape (rows a warp x loads in flight), alone and with K split
    for (int variant = 1; variant <= 4; ++variant) {
      for (int split : {1, 4}) {
        const std::string what = "fma variant " + std::to_string(variant) + " split " + std::to_string(split);
        CheckAgainstReference(p, RunGemv<float>(p, d, Fp8GemvPath::kFma, split, nullptr, variant),
                              Name(p, what.c_str()));
      }
    }
  }
}

TEST(Fp8GemvTest, RaggedShapesEveryTokenCountEverySplit) {
  const int64_t shapes[][2] = {{1, 16},     {3, 100},    {7, 128}, {33, 129},   {128, 512},   {130, 640},
                               {257, 1000}, {300, 4112}, {64, 17}, {129, 2056}, {1000, 5120}, {200, 6208}};
  uint64_t seed = 11;
  for (const auto& s : shapes) {
    for (int64_t tokens = 1; tokens <= kFp8GemvMaxTokens; ++tokens)
      CheckAllPaths(MakeProblem(tokens, s[1], s[0], seed++));
  }
}

// Qwen3.5-27B (hidden 5120): MLP gate_up and down, full attention q(+gate)/k/v and o, Gated DeltaNet in_proj
// (qkv + z) and out_proj.
TEST(Fp8GemvTest, Qwen35_27BShapes) {
  const struct {
    const char* name;
    int64_t n, k;
  } shapes[] = {{"mlp.gate_up", 34816, 5120}, {"mlp.down", 5120, 17408},    {"attn.qkv", 14336, 5120},
                {"attn.o", 5120, 6144},       {"gdn.in_qkvz", 16384, 5120}, {"gdn.out", 5120, 6144}};
  uint64_t seed = 500;
  for (const auto& s : shapes) {
    for (int64_t tokens : {1, 2, 4, 8}) {
      const Problem p = MakeProblem(tokens, s.k, s.n, seed++);
      const DeviceProblem d(p);
      const ErrorStats e = CheckAgainstReference(p, RunGemv<float>(p, d, Fp8GemvPath::kTensorCore, 0), Name(p, s.name));
      const ErrorStats f = CheckAgainstReference(p, RunGemv<float>(p, d, Fp8GemvPath::kFma, 0), Name(p, s.name));
      const auto yb = RunGemv<__nv_bfloat16>(p, d, Fp8GemvPath::kAuto, 0);
      int64_t bad = 0;
      for (size_t i = 0; i < yb.size(); ++i) {
        const double ref = p.ref[i], got = Bf16ToFloat(yb[i]);
        bad += !(std::fabs(got - ref) <= 0x1p-8 * std::fabs(ref) + 1e-4 * p.abs_sum[i]);
      }
      EXPECT_EQ(bad, 0) << Name(p, s.name) << " bf16";
      std::printf(
          "  %-11s M=%lld N=%5lld K=%5lld: rel. L2 error (error / bound) tensor core %.2e (%.3f), fma %.2e (%.3f)\n",
          s.name, static_cast<long long>(tokens), static_cast<long long>(s.n), static_cast<long long>(s.k), e.rel_l2,
          e.worst_ratio, f.rel_l2, f.worst_ratio);
    }
  }
}

TEST(Fp8GemvTest, UnalignedPointersTakeTheBytePath) {
  const Problem p = MakeProblem(3, 1024, 70, 77);
  const DeviceProblem d(p);
  DeviceBuffer<uint8_t> shifted(p.wq.size() + 1);
  CUDA_CHECK(cudaMemcpy(shifted.get() + 1, p.wq.data(), p.wq.size(), cudaMemcpyHostToDevice));
  for (Fp8GemvPath path : {Fp8GemvPath::kTensorCore, Fp8GemvPath::kFma}) {
    CheckAgainstReference(p, RunGemv<float>(p, d, path, 0, shifted.get() + 1), PathName(path));
  }
}

TEST(Fp8GemvTest, RejectsBadArguments) {
  float y = 0.0f;
  EXPECT_EQ(Fp8Gemv<float>(nullptr, nullptr, nullptr, nullptr, &y, 0, 128, 1, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(Fp8Gemv<float>(nullptr, nullptr, nullptr, nullptr, &y, 9, 128, 1, nullptr), cudaErrorInvalidValue);
  Fp8GemvOptions bad;
  bad.split = 3;
  const Problem p = MakeProblem(1, 128, 8, 3);
  const DeviceProblem d(p);
  DeviceBuffer<float> out(8);
  EXPECT_EQ(Fp8Gemv<float>(d.xq.get(), d.xs.get(), d.wq.get(), d.ws.get(), out.get(), 1, 128, 8, nullptr, bad),
            cudaErrorInvalidValue);
}

}  // namespace
}  // namespace octet::cuda
