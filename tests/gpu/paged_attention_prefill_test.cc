// cuda::PagedAttentionPrefill against cpu::PagedAttentionBf16 / PagedAttentionFp8 on random data, within the
// header's tolerance (per row: max|out - ref| <= 1e-2 * max|ref row|; per case: relative L2 <= 5e-3; both times
// max(1, q_mult / 2)), over bf16/fp8 caches, head_dims, GQA ratios, batches mixing prefill chunks with earlier
// context, fresh prompts and decodes, shuffled block tables, and the Qwen3.5-27B shapes (sampled rows). Also prints
// the speed of a Qwen-shaped 4096-token chunk after 12288 cached tokens against the SIMT PagedAttention.
#include "kernels/cuda/paged_attention_prefill.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/paged_attention.h"
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
  int sample = 0;       // tokens checked per sequence (first, last and random ones); 0 = all
};

std::string Describe(const Case& c) {
  std::string s = std::string(c.dtype == KvCacheDType::kBF16 ? "bf16" : "fp8") + " head_dim " +
                  std::to_string(c.head_dim) + " q_heads " + std::to_string(c.q_heads) + " kv_heads " +
                  std::to_string(c.kv_heads) + " block_size " + std::to_string(c.block_size) + " q_mult " +
                  std::to_string(c.q_mult) + " seqs";
  for (const Seq& q : c.seqs) s += " (" + std::to_string(q.query_len) + "," + std::to_string(q.context_len) + ")";
  return s;
}

// Host data, device buffers and args of one case.
class Problem {
 public:
  Problem(const Case& c, uint64_t seed) : c_(c), gen_(seed) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    const int64_t num_seqs = static_cast<int64_t>(c.seqs.size());
    const int64_t hd = c.head_dim, bs = c.block_size;
    int64_t total_blocks = 0;
    query_start_ = {0};
    for (const Seq& s : c.seqs) {
      const int64_t blocks = (s.context_len + bs - 1) / bs;
      max_blocks_ = std::max(max_blocks_, blocks);
      total_blocks += blocks;
      max_query_len_ = std::max(max_query_len_, s.query_len);
      max_context_len_ = std::max(max_context_len_, s.context_len);
      query_start_.push_back(query_start_.back() + s.query_len);
      context_lens_.push_back(s.context_len);
    }
    // Each sequence's blocks are distinct physical blocks in shuffled order (plus spare blocks).
    const int64_t num_blocks = total_blocks + 3;
    std::vector<int32_t> perm(static_cast<size_t>(num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), gen_);
    tables_.assign(static_cast<size_t>(num_seqs * max_blocks_), -1);
    size_t next = 0;
    for (int64_t b = 0; b < num_seqs; ++b) {
      const int64_t blocks = (c.seqs[b].context_len + bs - 1) / bs;
      for (int64_t i = 0; i < blocks; ++i) tables_[b * max_blocks_ + i] = perm[next++];
    }
    // Keys and values through the CPU store of the dtype; values get a per-column offset so that outputs stay O(1).
    const int64_t slots = num_blocks * bs, row = c.kv_heads * hd;
    std::vector<float> k(static_cast<size_t>(slots * row)), v(k.size()), offset(static_cast<size_t>(row));
    for (float& x : offset) x = uniform(gen_);
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = normal(gen_);
      v[i] = normal(gen_) + offset[i % row];
    }
    std::vector<int32_t> identity(static_cast<size_t>(slots));
    std::iota(identity.begin(), identity.end(), 0);
    if (c.dtype == KvCacheDType::kBF16) {
      kb_.resize(k.size());
      vb_.resize(k.size());
      cpu::StoreKvBf16(k.data(), v.data(), identity.data(), kb_.data(), vb_.data(), slots, c.kv_heads, hd);
      k_dev_ = std::make_unique<DeviceBuffer<uint8_t>>(k.size() * 2);
      v_dev_ = std::make_unique<DeviceBuffer<uint8_t>>(k.size() * 2);
      CUDA_CHECK(cudaMemcpy(k_dev_->get(), kb_.data(), k.size() * 2, cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(v_dev_->get(), vb_.data(), k.size() * 2, cudaMemcpyHostToDevice));
    } else {
      k8_.resize(k.size());
      v8_.resize(k.size());
      ks_.resize(static_cast<size_t>(slots * c.kv_heads));
      vs_.resize(ks_.size());
      cpu::StoreKvFp8(k.data(), v.data(), identity.data(), k8_.data(), v8_.data(), ks_.data(), vs_.data(), slots,
                      c.kv_heads, hd);
      k_dev_ = std::make_unique<DeviceBuffer<uint8_t>>(k8_);
      v_dev_ = std::make_unique<DeviceBuffer<uint8_t>>(v8_);
      ks_dev_ = std::make_unique<DeviceBuffer<float>>(ks_);
      vs_dev_ = std::make_unique<DeviceBuffer<float>>(vs_);
    }
    q_.resize(static_cast<size_t>(query_start_.back() * c.q_heads * hd));
    for (float& x : q_) x = normal(gen_) * c.q_mult;
    q_dev_ = std::make_unique<DeviceBuffer<float>>(q_);
    out_dev_ = std::make_unique<DeviceBuffer<float>>(q_.size());
    qs_dev_ = std::make_unique<DeviceBuffer<int32_t>>(query_start_);
    ctx_dev_ = std::make_unique<DeviceBuffer<int32_t>>(context_lens_);
    tables_dev_ = std::make_unique<DeviceBuffer<int32_t>>(tables_);

    const bool fp8 = c.dtype == KvCacheDType::kFp8E4M3;
    args_.q = q_dev_->get();
    args_.k_cache = k_dev_->get();
    args_.v_cache = v_dev_->get();
    args_.k_scale = fp8 ? ks_dev_->get() : nullptr;
    args_.v_scale = fp8 ? vs_dev_->get() : nullptr;
    args_.cache_dtype = c.dtype;
    args_.query_start = qs_dev_->get();
    args_.context_lens = ctx_dev_->get();
    args_.block_tables = tables_dev_->get();
    args_.max_blocks = max_blocks_;
    args_.num_seqs = num_seqs;
    args_.num_tokens = query_start_.back();
    args_.q_heads = c.q_heads;
    args_.kv_heads = c.kv_heads;
    args_.head_dim = hd;
    args_.block_size = bs;
    args_.max_query_len = max_query_len_;
    args_.max_context_len = max_context_len_;
    args_.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    args_.out = out_dev_->get();
  }

  PagedAttentionArgs& args() { return args_; }
  DeviceBuffer<float>& out_dev() { return *out_dev_; }

  // The tokens to check: all, or per sequence the first two, the last two and random ones.
  std::vector<std::pair<int64_t, int64_t>> Rows() {  // (sequence, token index in the sequence)
    std::vector<std::pair<int64_t, int64_t>> rows;
    for (int64_t b = 0; b < static_cast<int64_t>(c_.seqs.size()); ++b) {
      const int64_t n = c_.seqs[b].query_len;
      if (c_.sample == 0 || n <= c_.sample) {
        for (int64_t j = 0; j < n; ++j) rows.push_back({b, j});
        continue;
      }
      std::vector<int64_t> picks = {0, 1, n - 2, n - 1};
      std::uniform_int_distribution<int64_t> pick(2, n - 3);
      while (static_cast<int>(picks.size()) < c_.sample) picks.push_back(pick(gen_));
      std::sort(picks.begin(), picks.end());
      picks.erase(std::unique(picks.begin(), picks.end()), picks.end());
      for (int64_t j : picks) rows.push_back({b, j});
    }
    return rows;
  }

  // The CPU reference of token j of sequence b (all q heads): the same cache as a one-query sequence whose context
  // ends at the token's causal limit.
  void Reference(int64_t b, int64_t j, float* ref) const {
    const int32_t qs[2] = {0, 1};
    const int32_t ctx = context_lens_[b] - c_.seqs[b].query_len + static_cast<int32_t>(j) + 1;
    const float* q = q_.data() + (query_start_[b] + j) * c_.q_heads * c_.head_dim;
    const int32_t* table = tables_.data() + b * max_blocks_;
    if (c_.dtype == KvCacheDType::kBF16) {
      cpu::PagedAttentionBf16(q, kb_.data(), vb_.data(), qs, &ctx, table, max_blocks_, 1, c_.q_heads, c_.kv_heads,
                              c_.head_dim, c_.block_size, args_.scale, ref);
    } else {
      cpu::PagedAttentionFp8(q, k8_.data(), v8_.data(), ks_.data(), vs_.data(), qs, &ctx, table, max_blocks_, 1,
                             c_.q_heads, c_.kv_heads, c_.head_dim, c_.block_size, args_.scale, ref);
    }
  }

  // Compares the downloaded output on Rows() with the reference under the header's tolerance.
  void Check() {
    const std::vector<float> out = out_dev_->Download();
    const std::vector<std::pair<int64_t, int64_t>> rows = Rows();
    const int64_t width = c_.q_heads * c_.head_dim;
    std::vector<float> ref(rows.size() * static_cast<size_t>(width));
    ParallelFor(static_cast<int64_t>(rows.size()), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) Reference(rows[i].first, rows[i].second, ref.data() + i * width);
    });
    const double grow = std::max(1.0, c_.q_mult / 2.0);
    const double tol_row = 1e-2 * grow, tol_l2 = 5e-3 * grow;
    int failures = 0;
    double worst = 0.0, err2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t t = query_start_[rows[i].first] + rows[i].second;
      for (int64_t h = 0; h < c_.q_heads; ++h) {
        const float* o = out.data() + (t * c_.q_heads + h) * c_.head_dim;
        const float* r = ref.data() + i * width + h * c_.head_dim;
        double max_ref = 0.0, max_err = 0.0;
        for (int64_t d = 0; d < c_.head_dim; ++d) {
          const double e = static_cast<double>(o[d]) - r[d];
          max_ref = std::max(max_ref, std::fabs(static_cast<double>(r[d])));
          max_err = std::isnan(e) ? INFINITY : std::max(max_err, std::fabs(e));
          err2 += e * e;
          ref2 += static_cast<double>(r[d]) * r[d];
        }
        const double rel = max_err / std::max(max_ref, 1e-30);
        worst = std::max(worst, rel);
        if (!(rel <= tol_row) && failures++ < 5) {
          ADD_FAILURE() << "seq " << rows[i].first << " token " << rows[i].second << " head " << h << ": max rel err "
                        << rel << " > " << tol_row << " (gpu " << o[0] << " cpu " << r[0] << ")";
        }
      }
    }
    const double l2 = std::sqrt(err2 / std::max(ref2, 1e-30));
    EXPECT_EQ(failures, 0) << "worst row " << worst;
    EXPECT_LE(l2, tol_l2) << "relative L2";
    std::printf("[prefill] %s: worst row %.3g, L2 %.3g (%zu tokens)\n", Describe(c_).c_str(), worst, l2, rows.size());
  }

 private:
  Case c_;
  std::mt19937_64 gen_;
  int64_t max_blocks_ = 1;
  int32_t max_query_len_ = 0, max_context_len_ = 0;
  std::vector<int32_t> query_start_, context_lens_, tables_;
  std::vector<float> q_, ks_, vs_;
  std::vector<uint16_t> kb_, vb_;
  std::vector<uint8_t> k8_, v8_;
  std::unique_ptr<DeviceBuffer<uint8_t>> k_dev_, v_dev_;
  std::unique_ptr<DeviceBuffer<float>> ks_dev_, vs_dev_, q_dev_, out_dev_;
  std::unique_ptr<DeviceBuffer<int32_t>> qs_dev_, ctx_dev_, tables_dev_;
  PagedAttentionArgs args_;
};

void CheckCase(const Case& c, uint64_t seed) {
  SCOPED_TRACE(Describe(c));
  Problem problem(c, seed);
  EXPECT_EQ(PagedAttentionPrefillWorkspaceBytes(problem.args()), 0u);
  CUDA_CHECK(PagedAttentionPrefill(problem.args(), nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  problem.Check();
}

const KvCacheDType kDtypes[] = {KvCacheDType::kBF16, KvCacheDType::kFp8E4M3};

// Every dtype x head_dim x GQA ratio on a mixed batch: a 300-token chunk after 700 cached tokens, a fresh 512-token
// prompt, decodes, a short chunk, a one-token context.
TEST(PagedAttentionPrefillTest, MixedBatchGrid) {
  uint64_t seed = 1;
  for (KvCacheDType dtype : kDtypes) {
    for (int64_t hd : {64, 128, 256}) {
      for (int64_t group : {1, 4, 6}) {
        const int64_t kv_heads = group == 1 ? 3 : 2;
        CheckCase({dtype, hd, kv_heads * group, kv_heads, 16, {{300, 1000}, {512, 512}, {1, 77}, {7, 40}, {1, 1}}},
                  seed++);
      }
    }
  }
}

// Odd shapes: padded head_dims (80, 32, 192), block sizes other than 16, decode-only and tiny batches (correct
// though the caller would not pick this path), a peaky softmax.
TEST(PagedAttentionPrefillTest, OddShapes) {
  CheckCase({KvCacheDType::kBF16, 80, 8, 2, 16, {{100, 130}, {1, 5}}}, 100);
  CheckCase({KvCacheDType::kFp8E4M3, 32, 6, 1, 8, {{65, 65}, {2, 300}}}, 101);
  CheckCase({KvCacheDType::kFp8E4M3, 192, 12, 2, 4, {{70, 90}, {1, 33}}}, 102);
  CheckCase({KvCacheDType::kFp8E4M3, 256, 24, 4, 16, {{1, 1}, {1, 500}, {1, 2000}, {3, 40}}}, 103);
  CheckCase({KvCacheDType::kBF16, 128, 16, 2, 16, {{128, 1000}, {1, 2}, {64, 64}}, 4.0f}, 104);
  CheckCase({KvCacheDType::kFp8E4M3, 256, 24, 4, 16, {{256, 256}, {1, 900}, {100, 600}}, 3.0f}, 105);
}

// Qwen3.5-27B shapes (24 q heads, 4 kv heads, head_dim 256, block 16): a 4096-token chunk after 1024 cached tokens
// with a decode beside it, on both caches; a sample of rows is checked.
TEST(PagedAttentionPrefillTest, QwenChunk) {
  CheckCase({KvCacheDType::kFp8E4M3, 256, 24, 4, 16, {{4096, 5120}, {1, 3000}}, 1.0f, 40}, 200);
  CheckCase({KvCacheDType::kBF16, 256, 24, 4, 16, {{4096, 4096}}, 1.0f, 24}, 201);
}

// Speed: a Qwen-shaped 4096-token chunk after 12288 cached tokens (fp8 cache) through this path and through the
// SIMT PagedAttention, same args; prints ms of each (and checks a sample of rows of both).
TEST(PagedAttentionPrefillTest, QwenChunkTiming) {
  const Case c{KvCacheDType::kFp8E4M3, 256, 24, 4, 16, {{4096, 16384}}, 1.0f, 16};
  SCOPED_TRACE(Describe(c));
  Problem problem(c, 300);
  PagedAttentionArgs& args = problem.args();
  ASSERT_TRUE(PagedAttentionPrefillSupports(args));
  const size_t ws_bytes = PagedAttentionWorkspaceBytes(args);
  DeviceBuffer<uint8_t> ws(ws_bytes);
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  auto time_ms = [&](auto&& launch, int reps) {
    CUDA_CHECK(launch());  // warm-up
    CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < reps; ++i) CUDA_CHECK(launch());
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms / reps;
  };
  const float old_ms = time_ms(
      [&] {
        PagedAttentionArgs a = args;
        a.workspace = ws.get();
        a.workspace_bytes = ws_bytes;
        return PagedAttention(a, nullptr);
      },
      3);
  problem.Check();  // the SIMT kernel's output under the same bound
  problem.out_dev().Poison();
  const float new_ms = time_ms([&] { return PagedAttentionPrefill(args, nullptr); }, 10);
  problem.Check();
  // Causal FLOPs: 4 * head_dim per (row, visible key).
  double keys = 0.0;
  for (int64_t j = 0; j < 4096; ++j) keys += 16384 - 4096 + j + 1;
  const double flops = 4.0 * 256 * 24 * keys;
  std::printf(
      "[prefill timing] Qwen 4096-token chunk after 12288 cached, fp8: PagedAttentionPrefill %.3f ms (%.1f TFLOP/s), "
      "PagedAttention %.3f ms (%.1f TFLOP/s), speed-up %.2fx\n",
      new_ms, flops / new_ms * 1e-9, old_ms, flops / old_ms * 1e-9, old_ms / new_ms);
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
}

TEST(PagedAttentionPrefillTest, SupportsAndRejects) {
  PagedAttentionArgs args;
  args.cache_dtype = KvCacheDType::kFp8E4M3;
  args.q_heads = 24;
  args.kv_heads = 4;
  args.head_dim = 256;
  args.block_size = 16;
  args.num_seqs = 1;
  args.max_query_len = 4096;
  args.max_context_len = 16384;
  EXPECT_TRUE(PagedAttentionPrefillSupports(args));
  args.max_query_len = kPagedAttentionPrefillMinQueryLen - 1;
  EXPECT_FALSE(PagedAttentionPrefillSupports(args));  // decode-heavy: the SIMT kernel's job
  args.max_query_len = 4096;
  args.cache_dtype = KvCacheDType::kF32;
  EXPECT_FALSE(PagedAttentionPrefillSupports(args));
  EXPECT_EQ(PagedAttentionPrefill(args, nullptr), cudaErrorInvalidValue);
  args.cache_dtype = KvCacheDType::kBF16;
  args.head_dim = 72;  // not a multiple of 16
  EXPECT_FALSE(PagedAttentionPrefillSupports(args));
  EXPECT_EQ(PagedAttentionPrefill(args, nullptr), cudaErrorInvalidValue);
  args.head_dim = 272;
  EXPECT_FALSE(PagedAttentionPrefillSupports(args));
  args.head_dim = 128;
  args.kv_heads = 5;  // not a divisor
  EXPECT_FALSE(PagedAttentionPrefillSupports(args));
  args.kv_heads = 4;
  args.num_seqs = 0;
  EXPECT_EQ(PagedAttentionPrefill(args, nullptr), cudaSuccess);  // nothing to do
}

}  // namespace
}  // namespace octet::cuda
