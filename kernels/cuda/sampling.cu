// Token sampling, one CTA per row (see sampling.h).
#include "kernels/cuda/sampling.h"

#include <curand_kernel.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <limits>

namespace octet::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr uint32_t kOneBits = 0x3F800000u;  // 1.0f: every weight is in [0, 1]

using BlockReduceF = cub::BlockReduce<float, kThreads>;
using BlockReduceD = cub::BlockReduce<double, kThreads>;
using BlockReduceI = cub::BlockReduce<long long, kThreads>;
using BlockScanD = cub::BlockScan<double, kThreads>;

struct MaxOp {
  template <typename T>
  __device__ T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};
struct MinOp {
  template <typename T>
  __device__ T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};

struct Shared {
  union {
    typename BlockReduceF::TempStorage reduce_f;
    typename BlockReduceD::TempStorage reduce_d;
    typename BlockReduceI::TempStorage reduce_i;
    typename BlockScanD::TempStorage scan;
  };
  float max_value;
  long long broadcast_i;
  double broadcast_d;
};

__device__ long long BlockCount(Shared& s, const float* w, int64_t vocab, float tau) {
  long long c = 0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) c += w[i] >= tau;
  const long long total = BlockReduceI(s.reduce_i).Sum(c);
  if (threadIdx.x == 0) s.broadcast_i = total;
  __syncthreads();
  const long long out = s.broadcast_i;
  __syncthreads();
  return out;
}

// Sum of the weights >= tau (only positive ones count).
__device__ double BlockMass(Shared& s, const float* w, int64_t vocab, float tau) {
  double m = 0.0;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = w[i];
    if (v >= tau) m += v;
  }
  const double total = BlockReduceD(s.reduce_d).Sum(m);
  if (threadIdx.x == 0) s.broadcast_d = total;
  __syncthreads();
  const double out = s.broadcast_d;
  __syncthreads();
  return out;
}

__global__ void __launch_bounds__(kThreads)
    SampleKernel(const float* __restrict__ logits, int64_t vocab, const SamplingRow* __restrict__ params,
                 float* __restrict__ weights, int32_t* __restrict__ tokens) {
  __shared__ Shared s;
  const int64_t row = blockIdx.x;
  const float* x = logits + row * vocab;
  float* w = weights + row * vocab;
  const SamplingRow p = params[row];

  // 1. The maximum (NaN never compares greater) and, for greedy, its first index.
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) m = fmaxf(m, x[i]);  // fmaxf ignores NaN
  m = BlockReduceF(s.reduce_f).Reduce(m, MaxOp());
  if (threadIdx.x == 0) s.max_value = m;
  __syncthreads();
  m = s.max_value;
  if (!(p.temperature > 0.0f)) {
    long long first = vocab;
    if (m > -INFINITY) {
      for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
        if (x[i] == m) {
          first = i;
          break;
        }
      }
    }
    first = BlockReduceI(s.reduce_i).Reduce(first, MinOp());
    if (threadIdx.x == 0) tokens[row] = static_cast<int32_t>(first == vocab ? 0 : first);
    return;
  }

  // 2. Weights in [0, 1].
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = x[i];
    float wv;
    if (m == INFINITY) {
      wv = v == INFINITY ? 1.0f : 0.0f;
    } else if (m == -INFINITY) {
      wv = 1.0f;
    } else {
      wv = (v > -INFINITY) ? expf((v - m) / p.temperature) : 0.0f;  // NaN and -inf weigh 0
    }
    w[i] = wv;
  }
  __syncthreads();

  // 3. Top-k: the largest threshold that keeps at least k tokens.
  uint32_t lo = 0;
  if (p.top_k > 0 && p.top_k < vocab) {
    uint32_t hi = kOneBits + 1;
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (BlockCount(s, w, vocab, __uint_as_float(mid)) >= p.top_k) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
  }
  // 4. Top-p over what top-k kept: the largest threshold whose kept mass still reaches top_p of it.
  if (p.top_p < 1.0f) {
    const double target = static_cast<double>(p.top_p) * BlockMass(s, w, vocab, __uint_as_float(lo));
    uint32_t hi = kOneBits + 1;
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (BlockMass(s, w, vocab, __uint_as_float(mid)) >= target) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
  }
  const float tau = __uint_as_float(lo);

  // 5. One draw in token-id order: chunk sums, a block prefix scan, then the chunk that holds u.
  const int64_t chunk = (vocab + kThreads - 1) / kThreads;
  const int64_t begin = threadIdx.x * chunk, end = begin + chunk < vocab ? begin + chunk : vocab;
  double local = 0.0;
  long long last_kept = -1;
  for (int64_t i = begin; i < end; ++i) {
    const float v = w[i];
    if (v >= tau && v > 0.0f) {
      local += v;
      last_kept = i;
    }
  }
  double prefix = 0.0, total = 0.0;
  BlockScanD(s.scan).ExclusiveSum(local, prefix, total);
  __syncthreads();
  const long long last = BlockReduceI(s.reduce_i).Reduce(last_kept, MaxOp());
  if (threadIdx.x == 0) {
    s.broadcast_i = last;
    curandStatePhilox4_32_10_t state;
    curand_init(p.seed, 0, 0, &state);
    const uint4 r = curand4(&state);
    const uint64_t bits = (static_cast<uint64_t>(r.x) << 21) ^ (static_cast<uint64_t>(r.y) >> 11);  // 53 bits
    s.broadcast_d = static_cast<double>(bits & ((uint64_t{1} << 53) - 1)) * 0x1.0p-53 * total;
  }
  __syncthreads();
  const double u = s.broadcast_d;
  if (threadIdx.x == 0) tokens[row] = static_cast<int32_t>(s.broadcast_i < 0 ? 0 : s.broadcast_i);  // rounding
  __syncthreads();
  if (local > 0.0 && u >= prefix && u < prefix + local) {
    double cum = prefix;
    for (int64_t i = begin; i < end; ++i) {
      const float v = w[i];
      if (v >= tau && v > 0.0f) {
        cum += v;
        if (u < cum) {
          tokens[row] = static_cast<int32_t>(i);
          return;
        }
      }
    }
  }
}

}  // namespace

size_t SampleRowsWorkspaceBytes(int64_t rows, int64_t vocab) {
  return static_cast<size_t>(rows > 0 ? rows : 0) * static_cast<size_t>(vocab > 0 ? vocab : 0) * sizeof(float);
}

cudaError_t SampleRows(const float* logits, int64_t rows, int64_t vocab, const SamplingRow* params, int32_t* tokens,
                       void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (rows < 0 || vocab <= 0 || rows > 0x7fffffff || vocab > std::numeric_limits<int32_t>::max()) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  if (workspace_bytes < SampleRowsWorkspaceBytes(rows, vocab)) return cudaErrorInvalidValue;
  SampleKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, params,
                                                                     static_cast<float*>(workspace), tokens);
  return cudaGetLastError();
}

}  // namespace octet::cuda
