// The small fp32 ops of the forward pass: one thread per element (or a block per row for reductions).
#include "kernels/cuda/elementwise.h"

namespace octet::cuda {
namespace {

constexpr int kThreads = 256;

unsigned GridFor(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

__device__ __forceinline__ float Widen(float v) { return v; }
__device__ __forceinline__ float Widen(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__global__ void GatherRowsKernel(const T* __restrict__ table, const int32_t* __restrict__ rows, float* __restrict__ out,
                                 int64_t cols) {
  const int64_t i = blockIdx.x;
  const T* src = table + static_cast<int64_t>(rows[i]) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[i * cols + c] = Widen(src[c]);
}

// One block per row: the double sum of squares like the CPU's, then the CPU's fp32 steps.
__global__ void RmsNormKernel(const float* x, const float* __restrict__ w, float* out, int64_t cols, float eps,
                              bool offset) {
  __shared__ double partial[kThreads / 32];
  __shared__ float inv_rms_shared;
  const float* xr = x + blockIdx.x * cols;
  float* yr = out + blockIdx.x * cols;
  double sum = 0.0;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += static_cast<double>(xr[c]) * xr[c];
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total += partial[i];
    inv_rms_shared = 1.0f / sqrtf(static_cast<float>(total / static_cast<double>(cols)) + eps);
  }
  __syncthreads();
  const float inv_rms = inv_rms_shared;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float scale = offset ? 1.0f + w[c] : w[c];
    yr[c] = scale * (xr[c] * inv_rms);
  }
}

// One thread per (token, head, rotary pair).
__global__ void RopeKernel(float* __restrict__ x, const int32_t* __restrict__ positions, int64_t tokens, int64_t heads,
                           int64_t head_dim, int64_t rotary_dim, float theta) {
  const int64_t half = rotary_dim / 2;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= tokens * heads * half) return;
  const int64_t i = idx % half;
  const int64_t row = idx / half;  // token * heads + head
  const int64_t t = row / heads;
  // pow, cos and sin in double, rounded once to fp32: the correctly rounded powf/cosf/sinf of the host's libm (but
  // for rare double roundings), where CUDA's fp32 versions (2 ulp) differ by up to ~1e-5 at positions near 40k.
  const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
  const float inv_freq = 1.0f / static_cast<float>(pow(static_cast<double>(theta), static_cast<double>(exponent)));
  const float angle = static_cast<float>(positions[t]) * inv_freq;
  const float c = static_cast<float>(cos(static_cast<double>(angle)));
  const float s = static_cast<float>(sin(static_cast<double>(angle)));
  float* v = x + row * head_dim;
  const float x1 = v[i], x2 = v[i + half];
  v[i] = x1 * c - x2 * s;
  v[i + half] = x2 * c + x1 * s;
}

__global__ void SiluMulKernel(const float* __restrict__ gate_up, float* __restrict__ out, int64_t tokens,
                              int64_t inter) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= tokens * inter) return;
  const int64_t t = idx / inter, i = idx % inter;
  const float g = gate_up[t * 2 * inter + i], u = gate_up[t * 2 * inter + inter + i];
  out[idx] = g / (1.0f + expf(-g)) * u;
}

__global__ void AddKernel(const float* a, const float* b, float* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

__global__ void SplitQueryGateKernel(const float* __restrict__ qg, float* __restrict__ q, float* __restrict__ gate,
                                     int64_t rows, int64_t head_dim) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= rows * head_dim) return;
  const int64_t r = idx / head_dim, d = idx % head_dim;
  q[idx] = qg[r * 2 * head_dim + d];
  gate[idx] = qg[r * 2 * head_dim + head_dim + d];
}

__global__ void SigmoidGateKernel(const float* x, const float* __restrict__ gate, float* out, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = x[i] / (1.0f + expf(-gate[i]));
}

}  // namespace

template <typename T>
cudaError_t GatherRows(const T* table, const int32_t* rows, float* out, int64_t n, int64_t cols, cudaStream_t stream) {
  if (n < 0 || cols < 0 || n > 0x7fffffff) return cudaErrorInvalidValue;
  if (n == 0 || cols == 0) return cudaSuccess;
  GatherRowsKernel<T><<<static_cast<unsigned>(n), kThreads, 0, stream>>>(table, rows, out, cols);
  return cudaGetLastError();
}

cudaError_t RmsNormF32(const float* x, const float* w, float* out, int64_t rows, int64_t cols, float eps, bool offset,
                       cudaStream_t stream) {
  if (rows < 0 || cols < 0 || rows > 0x7fffffff) return cudaErrorInvalidValue;
  if (rows == 0 || cols == 0) return cudaSuccess;
  RmsNormKernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, w, out, cols, eps, offset);
  return cudaGetLastError();
}

cudaError_t Rope(float* x, const int32_t* positions, int64_t tokens, int64_t heads, int64_t head_dim,
                 int64_t rotary_dim, float theta, cudaStream_t stream) {
  if (rotary_dim % 2 != 0 || rotary_dim > head_dim || tokens < 0) return cudaErrorInvalidValue;
  const int64_t n = tokens * heads * (rotary_dim / 2);
  if (n == 0) return cudaSuccess;
  RopeKernel<<<GridFor(n), kThreads, 0, stream>>>(x, positions, tokens, heads, head_dim, rotary_dim, theta);
  return cudaGetLastError();
}

cudaError_t SiluMul(const float* gate_up, float* out, int64_t tokens, int64_t inter, cudaStream_t stream) {
  const int64_t n = tokens * inter;
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  SiluMulKernel<<<GridFor(n), kThreads, 0, stream>>>(gate_up, out, tokens, inter);
  return cudaGetLastError();
}

cudaError_t Add(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  AddKernel<<<GridFor(n), kThreads, 0, stream>>>(a, b, out, n);
  return cudaGetLastError();
}

cudaError_t SplitQueryGate(const float* qg, float* q, float* gate, int64_t rows, int64_t head_dim,
                           cudaStream_t stream) {
  const int64_t n = rows * head_dim;
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  SplitQueryGateKernel<<<GridFor(n), kThreads, 0, stream>>>(qg, q, gate, rows, head_dim);
  return cudaGetLastError();
}

cudaError_t SigmoidGate(const float* x, const float* gate, float* out, int64_t n, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  SigmoidGateKernel<<<GridFor(n), kThreads, 0, stream>>>(x, gate, out, n);
  return cudaGetLastError();
}

template cudaError_t GatherRows<float>(const float*, const int32_t*, float*, int64_t, int64_t, cudaStream_t);
template cudaError_t GatherRows<__nv_bfloat16>(const __nv_bfloat16*, const int32_t*, float*, int64_t, int64_t,
                                               cudaStream_t);

}  // namespace octet::cuda
