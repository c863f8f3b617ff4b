// CpuBackend: FP8 weights (quantized at load or uploaded as is), Linear dispatching on them, and the KV cache
// dispatching on its dtype (fp32, bf16, FP8 E4M3) — each against the kernels/cpu reference it must call.
#include "worker/runtime/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/linear.h"

namespace octet {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> RandomNormal(size_t n, std::mt19937& gen, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

template <typename T>
std::vector<T> DownloadAs(CpuBackend& backend, const Tensor& t) {
  std::vector<T> out(t.nbytes() / sizeof(T));
  backend.Download(t, out.data());
  return out;
}

Tensor UploadF32(CpuBackend& backend, const std::vector<float>& data, Shape shape) {
  return backend.Upload(DType::kF32, data.data(), std::move(shape));
}

Tensor UploadI32(CpuBackend& backend, const std::vector<int32_t>& data, Shape shape) {
  return backend.Upload(DType::kI32, data.data(), std::move(shape));
}

TEST(CpuBackendTest, ZerosAndEmptyAllocateNarrowDtypes) {
  CpuBackend backend;
  for (DType dtype : {DType::kF8E4M3, DType::kBF16, DType::kF32}) {
    const Tensor z = backend.Zeros(dtype, {3, 5, 7});
    EXPECT_EQ(z.dtype(), dtype);
    EXPECT_EQ(z.nbytes(), 105 * DTypeSize(dtype));
    const std::vector<uint8_t> bytes = DownloadAs<uint8_t>(backend, z);
    EXPECT_EQ(bytes, std::vector<uint8_t>(bytes.size(), 0)) << DTypeName(dtype);
    const Tensor e = backend.Empty(dtype, {4, 2});
    EXPECT_EQ(e.dtype(), dtype);
    EXPECT_EQ(e.nbytes(), 8 * DTypeSize(dtype));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// FP8 weights

TEST(CpuBackendTest, QuantizeLinearFp8MatchesTheReferenceForEveryHostDtype) {
  CpuBackend backend;
  std::mt19937 gen(1);
  const int64_t out = 130, in = 200;
  const std::vector<float> w32 = RandomNormal(out * in, gen, 0.02f);
  std::vector<uint16_t> w_bf16(w32.size()), w_f16(w32.size());
  for (size_t i = 0; i < w32.size(); ++i) w_bf16[i] = FloatToBF16(w32[i]);
  // f16 codes with exponents 5..20 (magnitudes 2^-10 .. 2^5), random sign and mantissa.
  for (uint16_t& h : w_f16) h = static_cast<uint16_t>((gen() & 0x8000u) | ((5 + gen() % 16) << 10) | (gen() & 0x3FFu));

  struct Host {
    DType dtype;
    const void* data;
  };
  for (const Host& host :
       {Host{DType::kF32, w32.data()}, Host{DType::kBF16, w_bf16.data()}, Host{DType::kF16, w_f16.data()}}) {
    const std::string what = std::string(DTypeName(host.dtype)) + " host weight";
    const LinearWeight w = backend.QuantizeLinearFp8(host.dtype, host.data, {out, in});
    ASSERT_TRUE(w.fp8()) << what;
    EXPECT_EQ(w.weight.shape(), (Shape{out, in})) << what;
    ASSERT_TRUE(w.scale.defined()) << what;
    EXPECT_EQ(w.scale.dtype(), DType::kF32) << what;
    EXPECT_EQ(w.scale.shape(), (Shape{2, 2})) << what;  // ceil(130 / 128) x ceil(200 / 128)

    std::vector<float> as_float(w32.size());
    ConvertToFloat(host.dtype, host.data, as_float.data(), out * in);
    std::vector<uint8_t> q(out * in);
    std::vector<float> scales(4);
    cpu::QuantizeWeightFp8(as_float.data(), out, in, q.data(), scales.data());
    EXPECT_EQ(DownloadAs<uint8_t>(backend, w.weight), q) << what;
    EXPECT_EQ(DownloadAs<float>(backend, w.scale), scales) << what;
  }
}

TEST(CpuBackendTest, UploadLinearFp8CopiesCodesAndScales) {
  CpuBackend backend;
  const int64_t out = 3, in = 129;
  std::vector<uint8_t> q(out * in);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<uint8_t>(i * 37);
  const std::vector<float> scales = {0.5f, 0.25f};
  const LinearWeight w = backend.UploadLinearFp8(q.data(), scales.data(), {out, in});
  ASSERT_TRUE(w.fp8());
  EXPECT_EQ(w.scale.shape(), (Shape{1, 2}));
  EXPECT_EQ(DownloadAs<uint8_t>(backend, w.weight), q);
  EXPECT_EQ(DownloadAs<float>(backend, w.scale), scales);
}

TEST(CpuBackendTest, LinearWithFp8WeightsQuantizesTheInputAndRunsTheBlockScaledGemm) {
  CpuBackend backend;
  std::mt19937 gen(2);
  for (auto [tokens, in, out] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 200, 130}, {5, 128, 256}, {3, 300, 7}}) {
    const std::string what = std::to_string(tokens) + "x" + std::to_string(in) + " -> " + std::to_string(out);
    const std::vector<float> x = RandomNormal(tokens * in, gen), w32 = RandomNormal(out * in, gen, 0.05f);
    const LinearWeight w8 = backend.QuantizeLinearFp8(DType::kF32, w32.data(), {out, in});
    const LinearWeight wf = backend.UploadLinear(DType::kF32, w32.data(), {out, in});
    ASSERT_FALSE(wf.fp8());
    const Tensor xt = UploadF32(backend, x, {tokens, in});
    Tensor y8 = backend.Empty(DType::kF32, {tokens, out}), y32 = backend.Empty(DType::kF32, {tokens, out});
    backend.Linear(xt, w8, y8);
    backend.Linear(xt, wf, y32);

    // Bit for bit the reference: activations quantized per token in groups of 128, then LinearFp8.
    std::vector<uint8_t> xq(tokens * in);
    std::vector<float> xs(tokens * cpu::Fp8NumBlocks(in)), expected(tokens * out, kNaN);
    cpu::QuantizeActivationFp8(x.data(), tokens, in, xq.data(), xs.data());
    const std::vector<uint8_t> wq = DownloadAs<uint8_t>(backend, w8.weight);
    const std::vector<float> ws = DownloadAs<float>(backend, w8.scale);
    cpu::LinearFp8(xq.data(), xs.data(), wq.data(), ws.data(), expected.data(), tokens, in, out);
    EXPECT_EQ(DownloadAs<float>(backend, y8), expected) << what;

    // And near the fp32 layer (kernels_cpu_fp8_test bounds this per element; here: relative RMS error < 6%).
    const std::vector<float> a = DownloadAs<float>(backend, y8), b = DownloadAs<float>(backend, y32);
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      err2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      ref2 += static_cast<double>(b[i]) * b[i];
    }
    EXPECT_LT(std::sqrt(err2 / ref2), 0.06) << what;
    EXPECT_GT(std::sqrt(err2 / ref2), 0.0) << what;
  }
}

TEST(CpuBackendTest, LinearRejectsFp8WeightsWithoutTheirScales) {
  CpuBackend backend;
  std::vector<uint8_t> q(4 * 8, 0x38);
  const std::vector<float> scales = {1.0f};
  LinearWeight w = backend.UploadLinearFp8(q.data(), scales.data(), {4, 8});
  w.scale = backend.Zeros(DType::kF32, {2, 1});  // wrong shape
  const Tensor x = backend.Zeros(DType::kF32, {1, 8});
  Tensor y = backend.Empty(DType::kF32, {1, 4});
  EXPECT_DEATH(backend.Linear(x, w, y), "needs fp32 block scales \\[1, 1\\]");
}

// ---------------------------------------------------------------------------------------------------------------
// KV cache

struct KvFixture {
  static constexpr int64_t kBlocks = 6, kBlockSize = 4, kKvHeads = 2, kQHeads = 4, kHeadDim = 16;
  // Two sequences: a prefill of 7 tokens in blocks {4, 1}, and a decode of 1 token after 8 cached, in blocks {0, 5, 2}.
  std::vector<int32_t> query_start = {0, 7, 8}, context_lens = {7, 9};
  std::vector<int32_t> block_tables = {4, 1, 0, 0, 5, 2};  // [2, 3]
  std::vector<float> q, k, v;
  AttentionBatch batch;

  KvFixture(CpuBackend& backend, std::mt19937& gen) {
    // Every token of both contexts is stored (the decode's 8 cached tokens first, as earlier steps would).
    std::vector<int32_t> slots;
    for (int64_t p = 0; p < 7; ++p) slots.push_back(block_tables[p / kBlockSize] * kBlockSize + p % kBlockSize);
    for (int64_t p = 0; p < 9; ++p) slots.push_back(block_tables[3 + p / kBlockSize] * kBlockSize + p % kBlockSize);
    slots.push_back(-1);  // a padding token
    k = RandomNormal(slots.size() * kKvHeads * kHeadDim, gen);
    v = RandomNormal(slots.size() * kKvHeads * kHeadDim, gen);
    q = RandomNormal(8 * kQHeads * kHeadDim, gen, 2.0f);
    batch.num_seqs = 2;
    batch.max_query_len = 7;
    batch.max_context_len = 9;
    batch.block_size = kBlockSize;
    batch.query_start = UploadI32(backend, query_start, {3});
    batch.context_lens = UploadI32(backend, context_lens, {2});
    batch.block_tables = UploadI32(backend, block_tables, {2, 3});
    batch.slot_mapping = UploadI32(backend, slots, {static_cast<int64_t>(slots.size())});
  }
  int64_t kv_tokens() const { return batch.slot_mapping.numel(); }
};

KvLayer MakeCache(CpuBackend& backend, DType dtype) {
  const Shape shape = {KvFixture::kBlocks, KvFixture::kBlockSize, KvFixture::kKvHeads, KvFixture::kHeadDim};
  KvLayer cache{backend.Zeros(dtype, shape), backend.Zeros(dtype, shape), {}, {}};
  if (dtype == DType::kF8E4M3) {
    cache.k_scale = backend.Zeros(DType::kF32, {KvFixture::kBlocks, KvFixture::kBlockSize, KvFixture::kKvHeads});
    cache.v_scale = backend.Zeros(DType::kF32, {KvFixture::kBlocks, KvFixture::kBlockSize, KvFixture::kKvHeads});
  }
  return cache;
}

TEST(CpuBackendTest, KvCacheDispatchesOnItsDtype) {
  CpuBackend backend;
  std::mt19937 gen(3);
  using F = KvFixture;
  KvFixture f(backend, gen);
  const int64_t cache_elems = F::kBlocks * F::kBlockSize * F::kKvHeads * F::kHeadDim;
  const int64_t scale_elems = F::kBlocks * F::kBlockSize * F::kKvHeads;
  const int64_t q_tokens = 8, max_blocks = 3, num_seqs = 2;
  const std::vector<int32_t> slots = DownloadAs<int32_t>(backend, f.batch.slot_mapping);
  const float scale = 0.25f;
  std::vector<float> out_f32;
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF8E4M3}) {
    const std::string what = std::string(DTypeName(dtype)) + " cache";
    KvLayer cache = MakeCache(backend, dtype);
    const Tensor k = UploadF32(backend, f.k, {f.kv_tokens(), F::kKvHeads, F::kHeadDim});
    const Tensor v = UploadF32(backend, f.v, {f.kv_tokens(), F::kKvHeads, F::kHeadDim});
    backend.StoreKv(k, v, f.batch, cache);
    const Tensor q = UploadF32(backend, f.q, {q_tokens, F::kQHeads, F::kHeadDim});
    Tensor out = backend.Empty(DType::kF32, {q_tokens, F::kQHeads, F::kHeadDim});
    backend.PagedAttention(q, cache, f.batch, scale, out);

    // The same through the reference kernels of that dtype, on caches starting zeroed like the backend's.
    std::vector<float> expected(q_tokens * F::kQHeads * F::kHeadDim, kNaN);
    if (dtype == DType::kF32) {
      std::vector<float> kc(cache_elems, 0.0f), vc(cache_elems, 0.0f);
      cpu::StoreKv(f.k.data(), f.v.data(), slots.data(), kc.data(), vc.data(), f.kv_tokens(), F::kKvHeads, F::kHeadDim);
      EXPECT_EQ(DownloadAs<float>(backend, cache.k), kc) << what;
      EXPECT_EQ(DownloadAs<float>(backend, cache.v), vc) << what;
      cpu::PagedAttention(f.q.data(), kc.data(), vc.data(), f.query_start.data(), f.context_lens.data(),
                          f.block_tables.data(), max_blocks, num_seqs, F::kQHeads, F::kKvHeads, F::kHeadDim,
                          F::kBlockSize, scale, expected.data());
    } else if (dtype == DType::kBF16) {
      std::vector<uint16_t> kc(cache_elems, 0), vc(cache_elems, 0);
      cpu::StoreKvBf16(f.k.data(), f.v.data(), slots.data(), kc.data(), vc.data(), f.kv_tokens(), F::kKvHeads,
                       F::kHeadDim);
      EXPECT_EQ(DownloadAs<uint16_t>(backend, cache.k), kc) << what;
      EXPECT_EQ(DownloadAs<uint16_t>(backend, cache.v), vc) << what;
      cpu::PagedAttentionBf16(f.q.data(), kc.data(), vc.data(), f.query_start.data(), f.context_lens.data(),
                              f.block_tables.data(), max_blocks, num_seqs, F::kQHeads, F::kKvHeads, F::kHeadDim,
                              F::kBlockSize, scale, expected.data());
    } else {
      std::vector<uint8_t> kc(cache_elems, 0), vc(cache_elems, 0);
      std::vector<float> ks(scale_elems, 0.0f), vs(scale_elems, 0.0f);
      cpu::StoreKvFp8(f.k.data(), f.v.data(), slots.data(), kc.data(), vc.data(), ks.data(), vs.data(), f.kv_tokens(),
                      F::kKvHeads, F::kHeadDim);
      EXPECT_EQ(DownloadAs<uint8_t>(backend, cache.k), kc) << what;
      EXPECT_EQ(DownloadAs<uint8_t>(backend, cache.v), vc) << what;
      EXPECT_EQ(DownloadAs<float>(backend, cache.k_scale), ks) << what;
      EXPECT_EQ(DownloadAs<float>(backend, cache.v_scale), vs) << what;
      // The scale of token 3 of the prefill (slot 4 * 4 + 3), head 1, is that token-head's amax / 448.
      float amax = 0.0f;
      for (int64_t d = 0; d < F::kHeadDim; ++d)
        amax = std::max(amax, std::fabs(f.k[(3 * F::kKvHeads + 1) * F::kHeadDim + d]));
      EXPECT_EQ(DownloadAs<float>(backend, cache.k_scale)[(4 * F::kBlockSize + 3) * F::kKvHeads + 1], amax / 448.0f);
      cpu::PagedAttentionFp8(f.q.data(), kc.data(), vc.data(), ks.data(), vs.data(), f.query_start.data(),
                             f.context_lens.data(), f.block_tables.data(), max_blocks, num_seqs, F::kQHeads,
                             F::kKvHeads, F::kHeadDim, F::kBlockSize, scale, expected.data());
    }
    const std::vector<float> got = DownloadAs<float>(backend, out);
    EXPECT_EQ(got, expected) << what;
    if (dtype == DType::kF32) {
      out_f32 = got;
    } else {  // and near the fp32 cache's attention (kernels_cpu_fp8_test bounds this per element)
      double max_err = 0;
      for (size_t i = 0; i < got.size(); ++i) max_err = std::max(max_err, std::fabs(double{got[i]} - out_f32[i]));
      EXPECT_LT(max_err, dtype == DType::kBF16 ? 0.02 : 0.25) << what;
      EXPECT_GT(max_err, 0.0) << what;
    }
  }
}

TEST(CpuBackendTest, KvCacheOfAnotherDtypeIsAProgrammerError) {
  CpuBackend backend;
  std::mt19937 gen(4);
  using F = KvFixture;
  KvFixture f(backend, gen);
  KvLayer cache = MakeCache(backend, DType::kF16);
  const Tensor k = UploadF32(backend, f.k, {f.kv_tokens(), F::kKvHeads, F::kHeadDim});
  EXPECT_DEATH(backend.StoreKv(k, k, f.batch, cache), "holds fp32, bf16 or fp8_e4m3 values, got fp16");
  const Tensor q = UploadF32(backend, f.q, {8, F::kQHeads, F::kHeadDim});
  Tensor out = backend.Empty(DType::kF32, {8, F::kQHeads, F::kHeadDim});
  EXPECT_DEATH(backend.PagedAttention(q, cache, f.batch, 0.25f, out), "holds fp32, bf16 or fp8_e4m3 values");
}

TEST(CpuBackendTest, Fp8KvCacheWithoutScalesIsAProgrammerError) {
  CpuBackend backend;
  std::mt19937 gen(5);
  using F = KvFixture;
  KvFixture f(backend, gen);
  KvLayer cache = MakeCache(backend, DType::kF8E4M3);
  cache.v_scale = Tensor();
  const Tensor k = UploadF32(backend, f.k, {f.kv_tokens(), F::kKvHeads, F::kHeadDim});
  EXPECT_DEATH(backend.StoreKv(k, k, f.batch, cache), "needs fp32 k_scale and v_scale \\[6, 4, 2\\], got none");
}

}  // namespace
}  // namespace octet
