// Gated DeltaNet ops: causal conv1d + SiLU with a rolling state, the gates, the gated delta rule (one warp per
// (sequence, v head, 8 state columns), state in registers) and the gated RMSNorm (one warp per row).
#include "kernels/cuda/gated_delta.h"

#include <algorithm>

#include "kernels/cuda/cuda_check.h"

namespace octet::cuda {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int64_t kMaxGrid = 0x7fffffff;
constexpr int64_t kMaxGridY = 65535;

// ---------------------------------------------------------------------------------------------------------------
// Causal conv1d + SiLU.

constexpr int kConvThreads = 256;

// The sequence b holding token t: the largest b with query_start[b] <= t (skips empty sequences); -1 when t is past
// query_start[num_seqs].
__device__ __forceinline__ int64_t FindSequence(const int32_t* __restrict__ query_start, int64_t num_seqs, int64_t t) {
  if (t >= query_start[num_seqs]) return -1;
  int64_t lo = 0, hi = num_seqs;  // query_start[lo] <= t < query_start[hi]
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (query_start[mid] <= t) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// One thread per (token, channel): out = silu(w[hist] x_t + sum_j w[j] x_{t-hist+j}), inputs before the sequence's
// first token from the old conv_state (zeros for a fresh sequence). Rounded as the CPU: mul then add, in its order.
__global__ void __launch_bounds__(kConvThreads)
    ConvOutKernel(const float* __restrict__ x, const float* __restrict__ w, const int32_t* __restrict__ query_start,
                  const int32_t* __restrict__ context_lens, const int32_t* __restrict__ state_slots, int64_t num_seqs,
                  int64_t num_tokens, int64_t channels, int64_t kernel, const float* __restrict__ conv_state,
                  float* __restrict__ out) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kConvThreads + threadIdx.x;
  if (c >= channels) return;
  const int64_t hist = kernel - 1;
  const float* wc = w + c * kernel;
  for (int64_t t = blockIdx.y; t < num_tokens; t += gridDim.y) {
    const int64_t b = FindSequence(query_start, num_seqs, t);
    if (b < 0) break;  // t only grows
    const int64_t begin = query_start[b];
    const int64_t len = query_start[b + 1] - begin;
    const bool fresh = context_lens[b] == len;
    const float* s = conv_state + (static_cast<int64_t>(state_slots[b]) * channels + c) * hist;
    const int64_t tr = t - begin;
    float acc = __fmul_rn(wc[hist], x[t * channels + c]);
    for (int64_t j = 0; j < hist; ++j) {
      const int64_t p = tr - hist + j;  // position of the input in the sequence (< 0: in the old state)
      const float v = p >= 0 ? x[(begin + p) * channels + c] : (fresh ? 0.0f : s[hist + p]);
      acc = __fadd_rn(acc, __fmul_rn(wc[j], v));
    }
    out[t * channels + c] = __fdiv_rn(acc, __fadd_rn(1.0f, expf(-acc)));
  }
}

// One thread per (sequence, channel), after ConvOutKernel: the state becomes the last hist inputs of [old state |
// the sequence's tokens]. In place in ascending j: entry j reads entry j + len > j, not yet overwritten.
__global__ void __launch_bounds__(kConvThreads)
    ConvStateKernel(const float* __restrict__ x, const int32_t* __restrict__ query_start,
                    const int32_t* __restrict__ context_lens, const int32_t* __restrict__ state_slots, int64_t num_seqs,
                    int64_t channels, int64_t kernel, float* __restrict__ conv_state) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kConvThreads + threadIdx.x;
  if (c >= channels) return;
  const int64_t hist = kernel - 1;
  for (int64_t b = blockIdx.y; b < num_seqs; b += gridDim.y) {
    const int64_t begin = query_start[b];
    const int64_t len = query_start[b + 1] - begin;
    const bool fresh = context_lens[b] == len;
    float* s = conv_state + (static_cast<int64_t>(state_slots[b]) * channels + c) * hist;
    for (int64_t j = 0; j < hist; ++j) {
      const int64_t src = j + len;  // index into [old state (hist) | tokens (len)]
      s[j] = src < hist ? (fresh ? 0.0f : s[src]) : x[(begin + src - hist) * channels + c];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Gates.

__global__ void __launch_bounds__(256)
    GdnGatesKernel(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ a_log,
                   const float* __restrict__ dt_bias, int64_t n, int64_t heads, float* __restrict__ g,
                   float* __restrict__ beta) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t h = i % heads;
  beta[i] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-b[i])));
  const float x = __fadd_rn(a[i], dt_bias[h]);
  const float softplus = x > 20.0f ? x : log1pf(expf(x));  // torch's softplus threshold
  g[i] = __fmul_rn(-expf(a_log[h]), softplus);
}

// ---------------------------------------------------------------------------------------------------------------
// Gated delta rule.

constexpr int kGdnWarps = 4;                     // warps per block (independent: no block barrier)
constexpr int kGdnRowGroups = 4;                 // lanes sharing a column, each holding every 4th row
constexpr int kGdnCols = kWarp / kGdnRowGroups;  // 8 state columns per warp: one 32-byte sector per row

struct GdnParams {
  const float* qkv;
  const float* g;
  const float* beta;
  const int32_t* query_start;
  const int32_t* context_lens;
  const int32_t* state_slots;
  int64_t num_seqs, k_heads, v_heads, k_dim, v_dim, col_groups;
  float* state;
  float* out;
};

// The inputs of one token for one lane: raw q/k elements lane + 32 u, v of its column, the gate and beta.
template <int kU>
struct TokenIn {
  float q[kU], k[kU];
  float v, g, beta;
};

template <int kU>
__device__ __forceinline__ void LoadToken(const GdnParams& p, int64_t t, int64_t kh, int64_t h, int64_t j, int lane,
                                          TokenIn<kU>& in) {
  const int64_t key_width = p.k_heads * p.k_dim;
  const float* x = p.qkv + t * (2 * key_width + p.v_heads * p.v_dim);
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int64_t e = lane + kWarp * u;
    in.q[u] = e < p.k_dim ? x[kh * p.k_dim + e] : 0.0f;
    in.k[u] = e < p.k_dim ? x[key_width + kh * p.k_dim + e] : 0.0f;
  }
  in.v = j < p.v_dim ? x[2 * key_width + h * p.v_dim + j] : 0.0f;
  in.g = p.g[t * p.v_heads + h];
  in.beta = p.beta[t * p.v_heads + h];
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Sum over the 4 lanes of a column (lanes c, c + 8, c + 16, c + 24).
__device__ __forceinline__ float ColumnSum(float v) {
  v += __shfl_xor_sync(kFullMask, v, 8);
  v += __shfl_xor_sync(kFullMask, v, 16);
  return v;
}

// kRpt rows per lane: the warp covers 4 * kRpt >= k_dim rows (rows past k_dim stay zero: their state is zero and
// their k is zero).
template <int kRpt>
__global__ void __launch_bounds__(kGdnWarps* kWarp, kRpt <= 32 ? 4 : 2) GatedDeltaKernel(const GdnParams p) {
  constexpr int kRows = kGdnRowGroups * kRpt;
  constexpr int kU = (kRows + kWarp - 1) / kWarp;
  __shared__ float q_shared[kGdnWarps][kRows];
  __shared__ float k_shared[kGdnWarps][kRows];
  const int warp = static_cast<int>(threadIdx.x) / kWarp, lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kGdnWarps + warp;
  if (item >= p.num_seqs * p.v_heads * p.col_groups) return;  // uniform per warp
  const int64_t cg = item % p.col_groups;
  const int64_t h = (item / p.col_groups) % p.v_heads;
  const int64_t b = item / p.col_groups / p.v_heads;
  const int rg = lane / kGdnCols;
  const int64_t j = cg * kGdnCols + lane % kGdnCols;
  const bool col_ok = j < p.v_dim;
  const int64_t kh = h / (p.v_heads / p.k_heads);
  const int64_t begin = p.query_start[b], end = p.query_start[b + 1];
  const bool fresh = p.context_lens[b] == end - begin;
  float* s_global = p.state + (static_cast<int64_t>(p.state_slots[b]) * p.v_heads + h) * p.k_dim * p.v_dim;
  float* q_sh = q_shared[warp];
  float* k_sh = k_shared[warp];

  // This lane's column of S from row rg, rows 4 apart: 32-bit offsets (k_dim * v_dim <= 65536), recomputed
  // rather than kept live as 64-bit addresses across the token loop.
  float* s_lane = s_global + rg * p.v_dim + j;
  const int row_stride = kGdnRowGroups * static_cast<int>(p.v_dim);
  const int rows_here = col_ok ? static_cast<int>((p.k_dim - rg + kGdnRowGroups - 1) / kGdnRowGroups) : 0;
  float s[kRpt];  // s[m] = S[rg + 4 m][j]
#pragma unroll
  for (int m = 0; m < kRpt; ++m) s[m] = (!fresh && m < rows_here) ? s_lane[m * row_stride] : 0.0f;

  const float q_scale = __fdiv_rn(1.0f, __fsqrt_rn(static_cast<float>(p.k_dim)));
  TokenIn<kU> next;
  if (begin < end) LoadToken<kU>(p, begin, kh, h, j, lane, next);
  for (int64_t t = begin; t < end; ++t) {
    const TokenIn<kU> cur = next;
    if (t + 1 < end) LoadToken<kU>(p, t + 1, kh, h, j, lane, next);  // in flight while this token computes

    // q, k = l2norm(q, k) (eps 1e-6), q *= 1/sqrt(k_dim): into this warp's shared rows.
    float sq = 0.0f, sk = 0.0f;
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      sq = fmaf(cur.q[u], cur.q[u], sq);
      sk = fmaf(cur.k[u], cur.k[u], sk);
    }
    sq = WarpSum(sq);
    sk = WarpSum(sk);
    const float inv_q = __fdiv_rn(q_scale, __fsqrt_rn(sq + 1e-6f));
    const float inv_k = __fdiv_rn(1.0f, __fsqrt_rn(sk + 1e-6f));
    __syncwarp();  // the previous token's reads of q_sh / k_sh are done
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int e = lane + kWarp * u;
      if (e < kRows) {
        q_sh[e] = cur.q[u] * inv_q;
        k_sh[e] = cur.k[u] * inv_k;
      }
    }
    __syncwarp();

    // S = decay S; kv = S^T k; d = beta (v - kv); S += k d^T; o = S^T q.
    const float decay = expf(cur.g);
    float kv = 0.0f;
#pragma unroll
    for (int m = 0; m < kRpt; ++m) {
      s[m] *= decay;
      kv = fmaf(s[m], k_sh[rg + kGdnRowGroups * m], kv);
    }
    kv = ColumnSum(kv);
    const float d = cur.beta * (cur.v - kv);
    float o = 0.0f;
#pragma unroll
    for (int m = 0; m < kRpt; ++m) {
      s[m] = fmaf(k_sh[rg + kGdnRowGroups * m], d, s[m]);
      o = fmaf(s[m], q_sh[rg + kGdnRowGroups * m], o);
    }
    o = ColumnSum(o);
    if (rg == 0 && col_ok) p.out[(t * p.v_heads + h) * p.v_dim + j] = o;
  }

#pragma unroll
  for (int m = 0; m < kRpt; ++m) {
    if (m < rows_here) s_lane[m * row_stride] = s[m];  // zeros for a fresh sequence with no tokens
  }
}

template <int kRpt>
cudaError_t LaunchGatedDelta(const GdnParams& p, int64_t blocks, cudaStream_t stream) {
  GatedDeltaKernel<kRpt><<<static_cast<unsigned>(blocks), kGdnWarps * kWarp, 0, stream>>>(p);
  return cudaGetLastError();
}

// ---------------------------------------------------------------------------------------------------------------
// Gated RMSNorm.

constexpr int kNormWarps = 8;

// One warp per row. x and out may alias: every element is read (for the sum, then for its output) only by the lane
// that writes it, and the sum's reads finish before the writes (the butterfly orders them).
__global__ void __launch_bounds__(kNormWarps* kWarp)
    RmsNormGatedKernel(const float* x, const float* __restrict__ z, const float* __restrict__ w, float* out,
                       int64_t rows, int64_t cols, float eps) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kNormWarps + threadIdx.x / kWarp;
  if (row >= rows) return;  // uniform per warp
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const float* xr = x + row * cols;
  const float* zr = z + row * cols;
  float* yr = out + row * cols;
  // The CPU's double sum of squares (products exact in double), strided per lane then a butterfly.
  double sum_sq = 0.0;
  for (int64_t c = lane; c < cols; c += kWarp) {
    const double v = xr[c];
    sum_sq = __dadd_rn(sum_sq, __dmul_rn(v, v));
  }
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    sum_sq = __dadd_rn(sum_sq, __shfl_xor_sync(kFullMask, sum_sq, offset));
  }
  const float mean = __double2float_rn(__ddiv_rn(sum_sq, static_cast<double>(cols)));
  const float inv_rms = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(mean, eps)));
  for (int64_t c = lane; c < cols; c += kWarp) {
    const float zc = zr[c];
    const float silu_z = __fdiv_rn(zc, __fadd_rn(1.0f, expf(-zc)));
    yr[c] = __fmul_rn(__fmul_rn(w[c], __fmul_rn(xr[c], inv_rms)), silu_z);
  }
}

}  // namespace

cudaError_t CausalConv1dSilu(const float* x, const float* w, const int32_t* query_start, const int32_t* context_lens,
                             const int32_t* state_slots, int64_t num_seqs, int64_t num_tokens, int64_t channels,
                             int64_t kernel, float* conv_state, float* out, cudaStream_t stream) {
  if (num_seqs < 0 || num_tokens < 0 || channels < 0 || kernel < 1) return cudaErrorInvalidValue;
  if (num_seqs == 0 || channels == 0) return cudaSuccess;
  const int64_t channel_blocks = (channels + kConvThreads - 1) / kConvThreads;
  if (channel_blocks > kMaxGrid) return cudaErrorInvalidValue;
  if (num_tokens > 0) {
    const dim3 grid(static_cast<unsigned>(channel_blocks), static_cast<unsigned>(std::min(num_tokens, kMaxGridY)));
    ConvOutKernel<<<grid, kConvThreads, 0, stream>>>(x, w, query_start, context_lens, state_slots, num_seqs, num_tokens,
                                                     channels, kernel, conv_state, out);
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
  }
  if (kernel > 1) {  // after ConvOutKernel (stream order): it reads the old state
    const dim3 grid(static_cast<unsigned>(channel_blocks), static_cast<unsigned>(std::min(num_seqs, kMaxGridY)));
    ConvStateKernel<<<grid, kConvThreads, 0, stream>>>(x, query_start, context_lens, state_slots, num_seqs, channels,
                                                       kernel, conv_state);
    CUDA_RETURN_IF_ERROR(cudaGetLastError());
  }
  return cudaSuccess;
}

cudaError_t GdnGates(const float* a, const float* b, const float* a_log, const float* dt_bias, int64_t tokens,
                     int64_t heads, float* g, float* beta, cudaStream_t stream) {
  if (tokens < 0 || heads < 0) return cudaErrorInvalidValue;
  const int64_t n = tokens * heads;
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  if (blocks > kMaxGrid) return cudaErrorInvalidValue;
  GdnGatesKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a, b, a_log, dt_bias, n, heads, g, beta);
  return cudaGetLastError();
}

cudaError_t GatedDeltaRule(const float* qkv, const float* g, const float* beta, const int32_t* query_start,
                           const int32_t* context_lens, const int32_t* state_slots, int64_t num_seqs,
                           int64_t num_tokens, int32_t max_query_len, int64_t k_heads, int64_t v_heads, int64_t k_dim,
                           int64_t v_dim, float* state, float* out, cudaStream_t stream) {
  if (num_seqs < 0 || num_tokens < 0 || max_query_len < 0 || k_heads <= 0 || v_heads <= 0) {
    return cudaErrorInvalidValue;
  }
  if (v_heads % k_heads != 0 || k_dim <= 0 || k_dim > 256 || v_dim <= 0 || v_dim > 256) return cudaErrorInvalidValue;
  if (num_seqs == 0) return cudaSuccess;
  GdnParams p{qkv,      g,       beta,    query_start, context_lens, state_slots,
              num_seqs, k_heads, v_heads, k_dim,       v_dim,        (v_dim + kGdnCols - 1) / kGdnCols,
              state,    out};
  const int64_t blocks = (num_seqs * v_heads * p.col_groups + kGdnWarps - 1) / kGdnWarps;
  if (blocks > kMaxGrid) return cudaErrorInvalidValue;
  if (k_dim <= 4 * kGdnRowGroups) return LaunchGatedDelta<4>(p, blocks, stream);
  if (k_dim <= 16 * kGdnRowGroups) return LaunchGatedDelta<16>(p, blocks, stream);
  if (k_dim <= 32 * kGdnRowGroups) return LaunchGatedDelta<32>(p, blocks, stream);
  return LaunchGatedDelta<64>(p, blocks, stream);
}

cudaError_t RmsNormGated(const float* x, const float* z, const float* w, float* out, int64_t rows, int64_t cols,
                         float eps, cudaStream_t stream) {
  if (rows < 0 || cols <= 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int64_t blocks = (rows + kNormWarps - 1) / kNormWarps;
  if (blocks > kMaxGrid) return cudaErrorInvalidValue;
  RmsNormGatedKernel<<<static_cast<unsigned>(blocks), kNormWarps * kWarp, 0, stream>>>(x, z, w, out, rows, cols, eps);
  return cudaGetLastError();
}

}  // namespace octet::cuda
