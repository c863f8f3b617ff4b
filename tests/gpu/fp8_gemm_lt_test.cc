// cuda::Fp8GemmLt (cuBLASLt block-scaled FP8 GEMM) against cpu::LinearFp8, on E4M3 codes and scales quantized from
// random floats by the CPU reference (QuantizeWeightFp8 / QuantizeActivationFp8), over small shapes that exercise the
// scale layouts (ceil(K/128) % 4 != 0 pads the weight-scale rows, N % 128 != 0 a ragged last block row, token counts
// that are not multiples of 4) and Qwen3.5-27B's projections at 16, 128, 1000 and 2048 tokens.
//
// Tolerance. Products of E4M3 values are exact, but cuBLASLt sums a 128-group's products in the tensor core (Hopper's
// FP8 MMA aligns its addends with only ~14 bits kept, DeepSeek-V3 report 3.3.2) before scaling the partial by
// fl(xs * ws) and adding it in fp32, in its own order. So each output must be within kElemTol * A of LinearFp8, with
// A = sum_g fl(xs * ws)_g * sum_{i in g} |dec(xq_i) dec(wq_i)| (a wrong or permuted scale gives errors of the order
// of |y| ~ A / sqrt(K), far above it even at K = 17408), and outputs of >= 4096 values within kRelL2Tol in relative
// L2 norm (expected ~1e-5 from the tensor core's accumulation; the measured values are printed). Also: every output
// written (outputs are poisoned with NaN first) and the same bits on a second run. The CPU reference is computed for
// a sample of tokens (all of them for small shapes, first and last always) to bound its cost.
#include "kernels/cuda/fp8_gemm_lt.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/linear.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::DeviceBuffer;
using testing::ParallelFor;

// Hopper's FP8 tensor cores add the products of a 128-group with limited precision before cuBLASLt applies the
// scales in fp32: measured ~2.3e-4 relative L2 against the exact sums and up to 1.2e-3 * A per output (H200).
constexpr double kElemTol = 0x1p-9;
constexpr double kRelL2Tol = 5e-4;
constexpr double kRefMacs = 3e9;  // CPU reference budget per problem (multiply-adds, reference + A)

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Standard normal samples, drawn by index (fast to draw in parallel).
const std::vector<float>& NormalTable() {
  static const std::vector<float> table = [] {
    std::mt19937_64 gen(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> t(1 << 16);
    for (auto& v : t) v = normal(gen);
    return t;
  }();
  return table;
}

// A quantized weight [out, in] on the host and the device (codes, cuBLASLt-layout scales).
struct Weight {
  int64_t in, out, groups;
  std::vector<uint8_t> wq;
  std::vector<float> ws;  // [ceil(out/128), groups]
  std::unique_ptr<DeviceBuffer<uint8_t>> d_wq;
  std::unique_ptr<DeviceBuffer<float>> d_ws_lt;  // Fp8GemmLt::PrepareWeightScales(ws)
};

Weight MakeWeight(int64_t out, int64_t in, uint64_t seed) {
  const int64_t groups = cpu::Fp8NumBlocks(in), row_blocks = cpu::Fp8NumBlocks(out);
  std::vector<uint8_t> wq(static_cast<size_t>(out * in));
  std::vector<float> ws(static_cast<size_t>(row_blocks * groups));
  const auto& normal = NormalTable();
  // Per 128-row block: normal values with a magnitude per 128x128 block (2^-8 .. 2^-2) and rare outliers, quantized
  // by the reference (QuantizeWeightFp8 on a row block is QuantizeWeightFp8 on those rows).
  ParallelFor(row_blocks, [&](int64_t b0, int64_t b1) {
    std::vector<float> w;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o0 = b * cpu::kFp8Block, rows = std::min(cpu::kFp8Block, out - o0);
      uint64_t state = seed * 0x100000001b3ull + static_cast<uint64_t>(b);
      std::vector<float> magnitude(static_cast<size_t>(groups));
      for (float& m : magnitude) m = std::exp2(-8.0f + static_cast<float>(SplitMix(state) % 600) / 100.0f);
      w.resize(static_cast<size_t>(rows * in));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < in; ++i) {
          const uint64_t bits = SplitMix(state);
          const float outlier = bits % 997 == 0 ? 20.0f : 1.0f;
          w[static_cast<size_t>(r * in + i)] =
              normal[(bits >> 20) & 0xffff] * magnitude[static_cast<size_t>(i / cpu::kFp8Block)] * outlier;
        }
      }
      cpu::QuantizeWeightFp8(w.data(), rows, in, wq.data() + o0 * in, ws.data() + b * groups);
    }
  });
  Weight weight{in, out, groups, std::move(wq), std::move(ws), nullptr, nullptr};
  weight.d_wq = std::make_unique<DeviceBuffer<uint8_t>>(weight.wq);
  weight.d_ws_lt = std::make_unique<DeviceBuffer<float>>(Fp8GemmLt::WeightScaleBytes(in, out) / sizeof(float));
  const DeviceBuffer<float> d_ws(weight.ws);
  CUDA_CHECK(Fp8GemmLt::PrepareWeightScales(d_ws.get(), weight.d_ws_lt->get(), in, out, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  return weight;
}

// Quantized activations [tokens, in]: normal tokens with a magnitude per token and a few outliers.
struct Activations {
  std::vector<uint8_t> xq;
  std::vector<float> xs;  // [tokens, groups]
};

Activations MakeActivations(int64_t tokens, int64_t in, uint64_t seed) {
  const auto& normal = NormalTable();
  std::vector<float> x(static_cast<size_t>(tokens * in));
  ParallelFor(tokens, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      uint64_t state = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(t);
      const float magnitude = std::exp2(-3.0f + static_cast<float>(SplitMix(state) % 600) / 100.0f);
      for (int64_t i = 0; i < in; ++i) {
        const uint64_t bits = SplitMix(state);
        x[static_cast<size_t>(t * in + i)] =
            normal[(bits >> 20) & 0xffff] * magnitude * (bits % 97 == 0 ? 30.0f : 1.0f);
      }
    }
  });
  Activations a;
  a.xq.resize(x.size());
  a.xs.resize(static_cast<size_t>(tokens * cpu::Fp8NumBlocks(in)));
  cpu::QuantizeActivationFp8(x.data(), tokens, in, a.xq.data(), a.xs.data());
  return a;
}

// Tokens the reference checks: all when affordable, else an even spread that includes the first and the last.
std::vector<int64_t> SampleTokens(int64_t tokens, int64_t in, int64_t out) {
  const auto affordable = static_cast<int64_t>(kRefMacs / (2.0 * static_cast<double>(in) * static_cast<double>(out)));
  const int64_t n = std::min(tokens, std::max<int64_t>(affordable, 2));
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) idx[static_cast<size_t>(s)] = n == 1 ? 0 : s * (tokens - 1) / (n - 1);
  return idx;
}

struct ErrorStats {
  double rel_l2;       // over the checked outputs
  double worst_ratio;  // max |gpu - cpu| / A
  int64_t checked;
};

// LinearFp8 and A on the sampled tokens, compared with y [tokens, out].
ErrorStats CheckAgainstReference(const Weight& w, const Activations& a, const std::vector<int64_t>& sample,
                                 const std::vector<float>& y, const std::string& what) {
  const int64_t in = w.in, out = w.out, groups = w.groups, s_count = static_cast<int64_t>(sample.size());
  std::vector<uint8_t> xq(static_cast<size_t>(s_count * in));
  std::vector<float> xs(static_cast<size_t>(s_count * groups));
  for (int64_t s = 0; s < s_count; ++s) {
    const int64_t t = sample[static_cast<size_t>(s)];
    std::memcpy(xq.data() + s * in, a.xq.data() + t * in, static_cast<size_t>(in));
    std::memcpy(xs.data() + s * groups, a.xs.data() + t * groups, static_cast<size_t>(groups) * sizeof(float));
  }
  std::vector<float> ref(static_cast<size_t>(s_count * out));
  std::vector<double> abs_sum(ref.size());
  std::vector<float> xa(xq.size());
  for (size_t i = 0; i < xq.size(); ++i) xa[i] = std::fabs(cpu::Fp8E4M3ToFloat(xq[i]));
  ParallelFor(cpu::Fp8NumBlocks(out), [&](int64_t b0, int64_t b1) {
    std::vector<float> part;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o0 = b * cpu::kFp8Block, n = std::min(cpu::kFp8Block, out - o0);
      part.assign(static_cast<size_t>(s_count * n), 0.0f);
      cpu::LinearFp8(xq.data(), xs.data(), w.wq.data() + o0 * in, w.ws.data() + b * groups, part.data(), s_count, in,
                     n);
      for (int64_t s = 0; s < s_count; ++s) {
        for (int64_t o = 0; o < n; ++o) {
          ref[static_cast<size_t>(s * out + o0 + o)] = part[static_cast<size_t>(s * n + o)];
          const uint8_t* wr = w.wq.data() + (o0 + o) * in;
          const float* xr = xa.data() + s * in;
          double total = 0.0;
          for (int64_t g = 0; g < groups; ++g) {
            double sum = 0.0;
            for (int64_t i = g * cpu::kFp8Block; i < std::min(in, (g + 1) * cpu::kFp8Block); ++i) {
              sum += static_cast<double>(xr[i]) * std::fabs(cpu::Fp8E4M3ToFloat(wr[i]));
            }
            total += sum * static_cast<double>(xs[static_cast<size_t>(s * groups + g)] *
                                               w.ws[static_cast<size_t>(b * groups + g)]);
          }
          abs_sum[static_cast<size_t>(s * out + o0 + o)] = total;
        }
      }
    }
  });

  double err2 = 0.0, ref2 = 0.0, worst = 0.0;
  int64_t failures = 0;
  for (int64_t s = 0; s < s_count; ++s) {
    const int64_t t = sample[static_cast<size_t>(s)];
    for (int64_t o = 0; o < out; ++o) {
      const double r = ref[static_cast<size_t>(s * out + o)], got = y[static_cast<size_t>(t * out + o)];
      const double bound = kElemTol * abs_sum[static_cast<size_t>(s * out + o)];
      const double err = std::fabs(got - r);
      if (!(err <= bound)) {  // NaN fails too
        if (failures++ < 5) {
          ADD_FAILURE() << what << ": output (token " << t << ", row " << o << ") gpu " << got << " cpu " << r
                        << " err " << err << " bound " << bound;
        }
      }
      if (bound > 0) worst = std::max(worst, err / (bound / kElemTol));
      err2 += (got - r) * (got - r);
      ref2 += r * r;
    }
  }
  EXPECT_EQ(failures, 0) << what;
  const double rel_l2 = ref2 > 0 ? std::sqrt(err2 / ref2) : std::sqrt(err2);
  if (ref.size() >= 4096) {
    EXPECT_LE(rel_l2, kRelL2Tol) << what;
  }
  return {rel_l2, worst, static_cast<int64_t>(ref.size())};
}

std::string Name(int64_t tokens, const Weight& w, const char* extra) {
  return std::string(extra) + " T=" + std::to_string(tokens) + " N=" + std::to_string(w.out) +
         " K=" + std::to_string(w.in);
}

// Runs the GEMM for these activations (twice: same bits), checks every output written and the sampled reference.
ErrorStats RunAndCheck(Fp8GemmLt& gemm, const Weight& w, int64_t tokens, uint64_t seed, const char* label,
                       double* ms = nullptr) {
  const std::string what = Name(tokens, w, label);
  EXPECT_TRUE(Fp8GemmLt::Supports(tokens, w.in, w.out)) << what;
  const Activations a = MakeActivations(tokens, w.in, seed);
  const DeviceBuffer<uint8_t> xq(a.xq);
  const DeviceBuffer<float> xs(a.xs);
  const size_t ws_bytes = Fp8GemmLt::WorkspaceBytes(tokens, w.in, w.out);
  DeviceBuffer<uint8_t> workspace(ws_bytes);
  DeviceBuffer<float> y(static_cast<size_t>(tokens * w.out));  // poisoned
  const cudaError_t err = gemm.Run(xq.get(), xs.get(), w.d_wq->get(), w.d_ws_lt->get(), y.get(), tokens, w.in, w.out,
                                   workspace.get(), ws_bytes, nullptr);
  EXPECT_EQ(err, cudaSuccess) << what << ": " << cudaGetErrorName(err) << " (cuBLASLt " << gemm.LastLtStatus() << ")";
  if (err != cudaSuccess) return {0, 0, 0};
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> out = y.Download();
  int64_t unwritten = 0;
  for (float v : out) unwritten += !std::isfinite(v);
  EXPECT_EQ(unwritten, 0) << what << ": outputs not written (or not finite)";

  y.Poison();
  CUDA_CHECK(gemm.Run(xq.get(), xs.get(), w.d_wq->get(), w.d_ws_lt->get(), y.get(), tokens, w.in, w.out,
                      workspace.get(), ws_bytes, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> again = y.Download();
  EXPECT_EQ(0, std::memcmp(out.data(), again.data(), out.size() * sizeof(float))) << what << ": rerun differs";

  if (ms != nullptr) {
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    constexpr int kReps = 10;
    CUDA_CHECK(cudaEventRecord(start));
    for (int r = 0; r < kReps; ++r) {
      CUDA_CHECK(gemm.Run(xq.get(), xs.get(), w.d_wq->get(), w.d_ws_lt->get(), y.get(), tokens, w.in, w.out,
                          workspace.get(), ws_bytes, nullptr));
    }
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float total = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&total, start, stop));
    *ms = total / kReps;
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
  }
  return CheckAgainstReference(w, a, SampleTokens(tokens, w.in, w.out), out, what);
}

TEST(Fp8GemmLtTest, SupportsAndArguments) {
  EXPECT_TRUE(Fp8GemmLt::Supports(16, 5120, 34816));
  EXPECT_TRUE(Fp8GemmLt::Supports(1000, 17408, 5120));
  EXPECT_TRUE(Fp8GemmLt::Supports(4, 128, 16));
  EXPECT_FALSE(Fp8GemmLt::Supports(0, 5120, 5120));                                 // no tokens
  EXPECT_FALSE(Fp8GemmLt::Supports(16, 5000, 5120));                                // ragged last group
  EXPECT_FALSE(Fp8GemmLt::Supports(16, 5120, 5128));                                // out % 16 != 0
  EXPECT_FALSE(Fp8GemmLt::Supports(16, 64, 128));                                   // in < 128
  EXPECT_EQ(Fp8GemmLt::WeightScaleBytes(384, 256), 2u * 4u * sizeof(float));        // 3 groups padded to 4
  EXPECT_EQ(Fp8GemmLt::WeightScaleBytes(5120, 34816), 272u * 40u * sizeof(float));  // no padding

  // PrepareWeightScales: rows copied, padding zeroed.
  const int64_t in = 640, out = 300;  // 5 groups (padded to 8), 3 block rows
  std::vector<float> ws(15);
  for (size_t i = 0; i < ws.size(); ++i) ws[i] = 1.0f + static_cast<float>(i);
  const DeviceBuffer<float> d_ws(ws);
  DeviceBuffer<float> d_ws_lt(Fp8GemmLt::WeightScaleBytes(in, out) / sizeof(float));  // poisoned
  ASSERT_EQ(d_ws_lt.size(), 24u);
  CUDA_CHECK(Fp8GemmLt::PrepareWeightScales(d_ws.get(), d_ws_lt.get(), in, out, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> lt = d_ws_lt.Download();
  for (int r = 0; r < 3; ++r) {
    for (int g = 0; g < 8; ++g) {
      EXPECT_EQ(lt[static_cast<size_t>(r * 8 + g)], g < 5 ? ws[static_cast<size_t>(r * 5 + g)] : 0.0f) << r << " " << g;
    }
  }

  // Run refuses unsupported shapes, null or misaligned pointers and short workspaces without touching anything.
  Fp8GemmLt gemm;
  DeviceBuffer<uint8_t> buf(Fp8GemmLt::WorkspaceBytes(16, 256, 128));
  auto* p = buf.get();
  const auto* f = reinterpret_cast<const float*>(p);
  auto* y = reinterpret_cast<float*>(p);
  const size_t bytes = buf.size();
  EXPECT_EQ(gemm.Run(p, f, p, f, y, 16, 200, 128, p, bytes, nullptr), cudaErrorNotSupported);
  EXPECT_EQ(gemm.Run(p, f, p, f, y, 16, 256, 120, p, bytes, nullptr), cudaErrorNotSupported);
  EXPECT_EQ(gemm.Run(nullptr, f, p, f, y, 16, 256, 128, p, bytes, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm.Run(p + 4, f, p, f, y, 16, 256, 128, p, bytes, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm.Run(p, f, p, f, y, 16, 256, 128, p, Fp8GemmLt::WorkspaceBytes(16, 256, 128) - 1, nullptr),
            cudaErrorInvalidValue);
}

// Scale layouts: ceil(K/128) = 1, 3 (padded to 4), 5 (to 8), 9, 17; N = 272 (a ragged 16-row last block row).
TEST(Fp8GemmLtTest, SmallShapes) {
  Fp8GemmLt gemm;
  const int64_t shapes[][2] = {{128, 128}, {256, 384}, {384, 640}, {272, 1152}, {1024, 2176}, {2048, 512}};
  uint64_t seed = 11;
  for (const auto& s : shapes) {
    const Weight w = MakeWeight(s[0], s[1], seed++);
    for (int64_t tokens : {16, 128, 1000}) {
      const ErrorStats e = RunAndCheck(gemm, w, tokens, seed++, "small");
      std::printf("  small      T=%5lld N=%5lld K=%5lld: rel. L2 error %.2e, max err / A %.2e (%lld outputs checked)\n",
                  static_cast<long long>(tokens), static_cast<long long>(w.out), static_cast<long long>(w.in), e.rel_l2,
                  e.worst_ratio, static_cast<long long>(e.checked));
    }
  }
}

// Token counts that are not multiples of 4: the VEC128 activation-scale rows ([ceil(K/128)][T], stride T) are then not
// 16-byte aligned and cuBLASLt refuses them, so Supports says no (the backend runs those last rows on the GEMV).
TEST(Fp8GemmLtTest, TokenCountsNotMultipleOf4AreNotSupported) {
  for (int64_t tokens : {1, 5, 17, 130, 1001}) EXPECT_FALSE(Fp8GemmLt::Supports(tokens, 640, 256)) << tokens;
  for (int64_t tokens : {4, 16, 132, 1004}) EXPECT_TRUE(Fp8GemmLt::Supports(tokens, 640, 256)) << tokens;
}

// Qwen3.5-27B (hidden 5120): MLP gate_up and down, Gated DeltaNet in_proj_qkv, attention o_proj.
TEST(Fp8GemmLtTest, Qwen35_27BShapes) {
  Fp8GemmLt gemm;
  const struct {
    const char* name;
    int64_t n, k;
  } shapes[] = {
      {"mlp.gate_up", 34816, 5120}, {"mlp.down", 5120, 17408}, {"gdn.in_qkv", 10240, 5120}, {"attn.o", 5120, 6144}};
  uint64_t seed = 500;
  for (const auto& s : shapes) {
    const Weight w = MakeWeight(s.n, s.k, seed++);
    for (int64_t tokens : {16, 128, 1000, 2048}) {
      double ms = 0.0;
      const ErrorStats e = RunAndCheck(gemm, w, tokens, seed++, s.name, &ms);
      const double tflops =
          2.0 * static_cast<double>(tokens) * static_cast<double>(s.n) * static_cast<double>(s.k) / (ms * 1e-3) / 1e12;
      std::printf(
          "  %-11s T=%5lld N=%5lld K=%5lld: rel. L2 error %.2e, max err / A %.2e (%lld outputs checked); %.3f ms, "
          "%.0f TFLOP/s\n",
          s.name, static_cast<long long>(tokens), static_cast<long long>(s.n), static_cast<long long>(s.k), e.rel_l2,
          e.worst_ratio, static_cast<long long>(e.checked), ms, tflops);
    }
  }
}

}  // namespace
}  // namespace octet::cuda
