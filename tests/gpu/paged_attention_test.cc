// cuda::PagedAttention against cpu::PagedAttention / PagedAttentionBf16 / PagedAttentionFp8 on random data: every
// output row within tol * max|reference row| (the header's tolerance), over cache dtypes, head_dims, GQA ratios,
// block sizes, batches mixing decodes and prefill chunks, long contexts (split-K) and shuffled block tables.
#include "kernels/cuda/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "tests/gpu/gpu_test_util.h"

namespace octet::cuda {
namespace {

using testing::DeviceBuffer;
using testing::ParallelFor;

struct Seq {
  int32_t query_len, context_len;
};

struct Case {
  KvCacheDType dtype;
  int64_t head_dim, q_heads, kv_heads, block_size;
  std::vector<Seq> seqs;
  float q_mult = 1.0f;  // > 1 makes the softmax peakier
};

std::string Describe(const Case& c) {
  std::string s = "dtype " + std::to_string(static_cast<int>(c.dtype)) + " head_dim " + std::to_string(c.head_dim) +
                  " q_heads " + std::to_string(c.q_heads) + " kv_heads " + std::to_string(c.kv_heads) + " block_size " +
                  std::to_string(c.block_size) + " seqs";
  for (const Seq& q : c.seqs) s += " (" + std::to_string(q.query_len) + "," + std::to_string(q.context_len) + ")";
  return s;
}

// The header's tolerance: relative to the row's largest reference magnitude, growing like sqrt(context).
double Tolerance(int32_t context_len) { return 2e-5 * std::max(1.0, std::sqrt(context_len / 1024.0)); }

void CheckCase(const Case& c, uint64_t seed) {
  SCOPED_TRACE(Describe(c));
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const int64_t num_seqs = static_cast<int64_t>(c.seqs.size());
  const int64_t hd = c.head_dim, bs = c.block_size;

  // Block tables: each sequence's blocks are distinct physical blocks in shuffled order (plus spare blocks).
  int64_t max_blocks = 1, total_blocks = 0;
  int32_t max_query_len = 0, max_context_len = 0;
  std::vector<int32_t> query_start{0}, context_lens;
  for (const Seq& s : c.seqs) {
    const int64_t blocks = (s.context_len + bs - 1) / bs;
    max_blocks = std::max(max_blocks, blocks);
    total_blocks += blocks;
    max_query_len = std::max(max_query_len, s.query_len);
    max_context_len = std::max(max_context_len, s.context_len);
    query_start.push_back(query_start.back() + s.query_len);
    context_lens.push_back(s.context_len);
  }
  const int64_t num_blocks = total_blocks + 3;
  const int64_t num_tokens = query_start.back();
  std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), gen);
  std::vector<int32_t> tables(static_cast<size_t>(num_seqs * max_blocks), -1);  // unused entries: never read
  size_t next = 0;
  for (int64_t b = 0; b < num_seqs; ++b) {
    const int64_t blocks = (c.seqs[b].context_len + bs - 1) / bs;
    for (int64_t i = 0; i < blocks; ++i) tables[b * max_blocks + i] = perm[next++];
  }

  // Keys and values for every slot, through the CPU store of the dtype; values get a per-column offset so that
  // the averaged outputs stay O(1).
  const int64_t slots = num_blocks * bs, row = c.kv_heads * hd;
  std::vector<float> k(static_cast<size_t>(slots * row)), v(k.size()), offset(static_cast<size_t>(row));
  for (float& x : offset) x = uniform(gen);
  for (size_t i = 0; i < k.size(); ++i) {
    k[i] = normal(gen);
    v[i] = normal(gen) + offset[i % row];
  }
  std::vector<int32_t> identity(static_cast<size_t>(slots));
  std::iota(identity.begin(), identity.end(), 0);
  std::vector<float> kf, vf, ks, vs;
  std::vector<uint16_t> kb, vb;
  std::vector<uint8_t> k8, v8;
  const void* k_host = nullptr;
  const void* v_host = nullptr;
  size_t cache_bytes = 0;
  switch (c.dtype) {
    case KvCacheDType::kF32:
      kf.resize(k.size());
      vf.resize(k.size());
      cpu::StoreKv(k.data(), v.data(), identity.data(), kf.data(), vf.data(), slots, c.kv_heads, hd);
      k_host = kf.data(), v_host = vf.data(), cache_bytes = k.size() * 4;
      break;
    case KvCacheDType::kBF16:
      kb.resize(k.size());
      vb.resize(k.size());
      cpu::StoreKvBf16(k.data(), v.data(), identity.data(), kb.data(), vb.data(), slots, c.kv_heads, hd);
      k_host = kb.data(), v_host = vb.data(), cache_bytes = k.size() * 2;
      break;
    case KvCacheDType::kFp8E4M3:
      k8.resize(k.size());
      v8.resize(k.size());
      ks.resize(static_cast<size_t>(slots * c.kv_heads));
      vs.resize(ks.size());
      cpu::StoreKvFp8(k.data(), v.data(), identity.data(), k8.data(), v8.data(), ks.data(), vs.data(), slots,
                      c.kv_heads, hd);
      k_host = k8.data(), v_host = v8.data(), cache_bytes = k.size();
      break;
  }
  std::vector<float> q(static_cast<size_t>(num_tokens * c.q_heads * hd));
  for (float& x : q) x = normal(gen) * c.q_mult;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  // Reference, one sequence per CPU thread.
  std::vector<float> ref(q.size());
  ParallelFor(num_seqs, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int32_t qs[2] = {0, c.seqs[b].query_len};
      const int64_t off = query_start[b] * c.q_heads * hd;
      const int32_t* table = tables.data() + b * max_blocks;
      switch (c.dtype) {
        case KvCacheDType::kF32:
          cpu::PagedAttention(q.data() + off, kf.data(), vf.data(), qs, &context_lens[b], table, max_blocks, 1,
                              c.q_heads, c.kv_heads, hd, bs, scale, ref.data() + off);
          break;
        case KvCacheDType::kBF16:
          cpu::PagedAttentionBf16(q.data() + off, kb.data(), vb.data(), qs, &context_lens[b], table, max_blocks, 1,
                                  c.q_heads, c.kv_heads, hd, bs, scale, ref.data() + off);
          break;
        case KvCacheDType::kFp8E4M3:
          cpu::PagedAttentionFp8(q.data() + off, k8.data(), v8.data(), ks.data(), vs.data(), qs, &context_lens[b],
                                 table, max_blocks, 1, c.q_heads, c.kv_heads, hd, bs, scale, ref.data() + off);
          break;
      }
    }
  });

  DeviceBuffer<uint8_t> k_dev(cache_bytes), v_dev(cache_bytes);
  CUDA_CHECK(cudaMemcpy(k_dev.get(), k_host, cache_bytes, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(v_dev.get(), v_host, cache_bytes, cudaMemcpyHostToDevice));
  const bool fp8 = c.dtype == KvCacheDType::kFp8E4M3;
  DeviceBuffer<float> ks_dev(fp8 ? ks : std::vector<float>{}), vs_dev(fp8 ? vs : std::vector<float>{});
  DeviceBuffer<float> q_dev(q), out_dev(q.size());  // out poisoned with NaN: unwritten rows show
  DeviceBuffer<int32_t> qs_dev(query_start), ctx_dev(context_lens), tables_dev(tables);

  PagedAttentionArgs args;
  args.q = q_dev.get();
  args.k_cache = k_dev.get();
  args.v_cache = v_dev.get();
  args.k_scale = fp8 ? ks_dev.get() : nullptr;
  args.v_scale = fp8 ? vs_dev.get() : nullptr;
  args.cache_dtype = c.dtype;
  args.query_start = qs_dev.get();
  args.context_lens = ctx_dev.get();
  args.block_tables = tables_dev.get();
  args.max_blocks = max_blocks;
  args.num_seqs = num_seqs;
  args.num_tokens = num_tokens;
  args.q_heads = c.q_heads;
  args.kv_heads = c.kv_heads;
  args.head_dim = hd;
  args.block_size = bs;
  args.max_query_len = max_query_len;
  args.max_context_len = max_context_len;
  args.scale = scale;
  args.out = out_dev.get();
  const size_t ws_bytes = PagedAttentionWorkspaceBytes(args);
  ASSERT_GT(ws_bytes, 0u);
  DeviceBuffer<uint8_t> ws(ws_bytes);
  args.workspace = ws.get();
  args.workspace_bytes = ws_bytes - 1;
  EXPECT_EQ(PagedAttention(args, nullptr), cudaErrorInvalidValue);  // too small a workspace
  args.workspace_bytes = ws_bytes;
  CUDA_CHECK(PagedAttention(args, nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> out = out_dev.Download();

  int failures = 0;
  double worst = 0.0;
  for (int64_t b = 0; b < num_seqs; ++b) {
    const double tol = Tolerance(c.seqs[b].context_len);
    for (int64_t t = query_start[b]; t < query_start[b + 1]; ++t) {
      for (int64_t h = 0; h < c.q_heads; ++h) {
        const size_t base = static_cast<size_t>((t * c.q_heads + h) * hd);
        double max_ref = 0.0, max_err = 0.0;
        for (int64_t d = 0; d < hd; ++d) {
          max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[base + d])));
          const double err = std::fabs(static_cast<double>(out[base + d]) - ref[base + d]);
          max_err = std::isnan(err) ? INFINITY : std::max(max_err, err);
        }
        const double rel = max_err / std::max(max_ref, 1e-30);
        worst = std::max(worst, rel);
        if (!(rel <= tol) && failures++ < 5) {
          ADD_FAILURE() << "seq " << b << " token " << t << " head " << h << ": max rel err " << rel << " > " << tol
                        << " (gpu " << out[base] << " cpu " << ref[base] << ")";
        }
      }
    }
  }
  EXPECT_EQ(failures, 0) << "worst " << worst;
}

const KvCacheDType kDtypes[] = {KvCacheDType::kF32, KvCacheDType::kBF16, KvCacheDType::kFp8E4M3};

// Every dtype x head_dim x GQA ratio x block size, on a mixed batch (decodes, a pure prefill, prefill chunks with
// earlier context, split-K on the longer contexts) and on a decode-only batch (the 8-row tiles when they apply).
TEST(PagedAttentionTest, MixedBatchGrid) {
  uint64_t seed = 1;
  for (KvCacheDType dtype : kDtypes) {
    for (int64_t hd : {16, 64, 128, 256}) {
      for (int64_t group : {1, 4, 6}) {
        for (int64_t bs : {4, 16}) {
          const int64_t kv_heads = group == 1 ? 3 : 2;
          CheckCase({dtype,
                     hd,
                     kv_heads * group,
                     kv_heads,
                     bs,
                     {{1, 1}, {1, 37}, {5, 5}, {7, 50}, {1, 300}, {16, 200}, {3, 70}}},
                    seed++);
          CheckCase({dtype, hd, kv_heads * group, kv_heads, bs, {{1, 1}, {1, 77}, {1, 300}, {1, 33}}}, seed++);
        }
      }
    }
  }
}

// Contexts of thousands of keys: split-K with many splits, prefill chunks at the end of a long context.
TEST(PagedAttentionTest, LongContexts) {
  uint64_t seed = 1000;
  for (KvCacheDType dtype : kDtypes) {
    CheckCase({dtype, 128, 8, 2, 16, {{1, 4096}, {1, 1000}, {3, 4096}, {1, 17}, {40, 2000}}}, seed++);
    CheckCase({dtype, 64, 4, 4, 4, {{1, 4096}, {2, 3000}}}, seed++);
  }
}

// Qwen3.5-27B decode shapes (24 q heads, 4 kv heads, head_dim 256, block 16, fp8): a 32k-token decode (split-K
// with many splits), a batch of decodes of assorted lengths (the 8-row tiles), and Qwen3-like head_dim 128, GQA 4.
TEST(PagedAttentionTest, QwenDecodeShapes) {
  CheckCase({KvCacheDType::kFp8E4M3, 256, 24, 4, 16, {{1, 32768}, {1, 5000}}}, 2000);
  std::vector<Seq> decodes;
  std::mt19937 gen(7);
  std::uniform_int_distribution<int32_t> len(1, 3000);
  for (int i = 0; i < 48; ++i) decodes.push_back({1, len(gen)});
  CheckCase({KvCacheDType::kFp8E4M3, 256, 24, 4, 16, decodes}, 2001);
  CheckCase({KvCacheDType::kBF16, 256, 24, 4, 16, decodes}, 2002);
  CheckCase({KvCacheDType::kBF16, 128, 32, 8, 16, decodes}, 2003);
}

// Long prefill chunks (many row tiles), a peaky softmax, mixed with decodes.
TEST(PagedAttentionTest, PrefillChunks) {
  CheckCase({KvCacheDType::kFp8E4M3, 256, 24, 4, 16, {{256, 256}, {1, 900}, {100, 600}}}, 3000);
  CheckCase({KvCacheDType::kBF16, 128, 16, 2, 16, {{128, 1000}, {1, 2}, {64, 64}}, 4.0f}, 3001);
  CheckCase({KvCacheDType::kF32, 64, 6, 1, 4, {{33, 33}, {1, 1}, {2, 2}}, 3.0f}, 3002);
}

TEST(PagedAttentionTest, RejectsBadArgsAndAcceptsEmpty) {
  PagedAttentionArgs args;
  args.q_heads = 6;
  args.kv_heads = 4;  // not a divisor
  args.head_dim = 64;
  args.block_size = 16;
  EXPECT_EQ(PagedAttention(args, nullptr), cudaErrorInvalidValue);
  args.kv_heads = 2;
  args.head_dim = 12;  // not a multiple of 8
  EXPECT_EQ(PagedAttention(args, nullptr), cudaErrorInvalidValue);
  args.head_dim = 264;
  EXPECT_EQ(PagedAttention(args, nullptr), cudaErrorInvalidValue);
  args.head_dim = 64;
  EXPECT_EQ(PagedAttentionWorkspaceBytes(args), 0u);
  EXPECT_EQ(PagedAttention(args, nullptr), cudaSuccess);  // no sequences
}

}  // namespace
}  // namespace octet::cuda
