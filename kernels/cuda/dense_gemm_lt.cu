// Split-bf16 dense GEMM on cuBLASLt (see dense_gemm_lt.h): split kernel, one bf16 GEMM with fp32 output, add kernel.
#include "kernels/cuda/dense_gemm_lt.h"

#include <cublasLt.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <tuple>

namespace octet::cuda {
namespace {

constexpr int kThreads = 256;

size_t AlignUp(size_t a, size_t b) { return (a + b - 1) / b * b; }

// x [T, K] -> xs [3T, K]: bf16 hi = bf16(x), mid = bf16(x - hi), lo = bf16(x - hi - mid) (each difference exact in
// fp32): hi + mid + lo = x to ~2^-26 relative, below fp32's own rounding.
__global__ void SplitKernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ xs, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = x[i];
  const __nv_bfloat16 hi = __float2bfloat16_rn(v);
  const float r = v - __bfloat162float(hi);
  const __nv_bfloat16 mid = __float2bfloat16_rn(r);
  xs[i] = hi;
  xs[n + i] = mid;
  xs[2 * n + i] = __float2bfloat16_rn(r - __bfloat162float(mid));
}

// y = d[0:T] + d[T:2T] + d[2T:3T], the small terms first.
__global__ void AddPartsKernel(const float* __restrict__ d, float* __restrict__ y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = d[i] + (d[n + i] + d[2 * n + i]);
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
  ~Plan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

#define OCTET_LT_TRY(expr)                                  \
  do {                                                      \
    const cublasStatus_t octet_lt_s_ = (expr);              \
    if (octet_lt_s_ != CUBLAS_STATUS_SUCCESS) return false; \
  } while (0)

// Column-major view: D [out, 2T] = W^T... as in fp8_gemm_lt: A = w (k x out, transposed), B = xs (k x 2T).
bool BuildPlan(cublasLtHandle_t handle, Plan& p, int64_t rows, int64_t in, int64_t out) {
  OCTET_LT_TRY(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  OCTET_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  OCTET_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const auto k = static_cast<uint64_t>(in), n = static_cast<uint64_t>(out), t = static_cast<uint64_t>(rows);
  OCTET_LT_TRY(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, k, n, in));
  OCTET_LT_TRY(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, k, t, in));
  OCTET_LT_TRY(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, n, t, out));
  cublasLtMatmulPreference_t pref = nullptr;
  OCTET_LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t max_ws = DenseGemmLt::kLtWorkspaceBytes;
  cublasStatus_t s =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof(max_ws));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || returned == 0 || result.state != CUBLAS_STATUS_SUCCESS) return false;
  p.algo = result.algo;
  return true;
}

}  // namespace

struct DenseGemmLt::Impl {
  cublasLtHandle_t handle = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Plan> plans;
};

DenseGemmLt::DenseGemmLt() : impl_(std::make_unique<Impl>()) {
  const cublasStatus_t s = cublasLtCreate(&impl_->handle);
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s:%d: cuBLASLt error %s in cublasLtCreate\n", __FILE__, __LINE__, cublasLtGetStatusName(s));
    std::abort();
  }
}

DenseGemmLt::~DenseGemmLt() {
  impl_->plans.clear();
  cublasLtDestroy(impl_->handle);
}

size_t DenseGemmLt::WorkspaceBytes(int64_t tokens, int64_t in, int64_t out_features) {
  const auto t = static_cast<size_t>(tokens);
  return AlignUp(3 * t * static_cast<size_t>(in) * 2, 256) +
         AlignUp(3 * t * static_cast<size_t>(out_features) * 4, 256) + kLtWorkspaceBytes;
}

cudaError_t DenseGemmLt::Run(const float* x, const __nv_bfloat16* w, float* y, int64_t tokens, int64_t in,
                             int64_t out_features, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (tokens <= 0 || in <= 0 || out_features <= 0 || in % 8 != 0 || out_features % 8 != 0) {
    return cudaErrorInvalidValue;
  }
  if (workspace_bytes < WorkspaceBytes(tokens, in, out_features)) return cudaErrorInvalidValue;
  const int64_t rows = 3 * tokens;
  auto key = std::make_tuple(rows, in, out_features);
  auto it = impl_->plans.find(key);
  if (it == impl_->plans.end()) {
    it = impl_->plans.try_emplace(key).first;
    it->second.ok = BuildPlan(impl_->handle, it->second, rows, in, out_features);
  }
  const Plan& p = it->second;
  if (!p.ok) return cudaErrorNotSupported;

  auto* base = static_cast<char*>(workspace);
  auto* xs = reinterpret_cast<__nv_bfloat16*>(base);
  base += AlignUp(static_cast<size_t>(rows * in) * 2, 256);
  auto* d = reinterpret_cast<float*>(base);
  base += AlignUp(static_cast<size_t>(rows * out_features) * 4, 256);
  void* lt_workspace = base;

  const int64_t n_in = tokens * in, n_out = tokens * out_features;
  SplitKernel<<<static_cast<unsigned>((n_in + kThreads - 1) / kThreads), kThreads, 0, stream>>>(x, xs, n_in);
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t s = cublasLtMatmul(impl_->handle, p.desc, &alpha, w, p.a, xs, p.b, &beta, d, p.d, d, p.d,
                                          &p.algo, lt_workspace, kLtWorkspaceBytes, stream);
  if (s != CUBLAS_STATUS_SUCCESS) return s == CUBLAS_STATUS_NOT_SUPPORTED ? cudaErrorNotSupported : cudaErrorUnknown;
  AddPartsKernel<<<static_cast<unsigned>((n_out + kThreads - 1) / kThreads), kThreads, 0, stream>>>(d, y, n_out);
  return cudaGetLastError();
}

}  // namespace octet::cuda
