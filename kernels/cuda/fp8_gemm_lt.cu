// The prefill FP8 GEMM through cuBLASLt's block-scaled FP8 matmul (layouts and sources in fp8_gemm_lt.h), plus the
// one kernel it needs: the transpose of the activation scales into cuBLASLt's VEC128 layout.
#include "kernels/cuda/fp8_gemm_lt.h"

#include <cublasLt.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <tuple>

#include "kernels/cuda/cuda_check.h"

namespace octet::cuda {
namespace {

constexpr int64_t kBlock = 128;
constexpr int kTile = 32;     // transpose tile: 32 x 32 floats
constexpr int kTileRows = 8;  // threads per tile column (a 32 x 8 block)
constexpr size_t kMaxPlans = 256;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
size_t AlignUp(size_t a, size_t b) { return (a + b - 1) / b * b; }
bool Aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % Fp8GemmLt::kAlignment == 0; }

// xs [tokens][groups] -> xs_t [groups][tokens]: a shared-memory tile transpose, both sides coalesced. Pure copies.
__global__ void __launch_bounds__(kTile* kTileRows)
    TransposeScalesKernel(const float* __restrict__ xs, float* __restrict__ xs_t, int64_t tokens, int64_t groups) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTile, g0 = static_cast<int64_t>(blockIdx.y) * kTile;
  for (int i = static_cast<int>(threadIdx.y); i < kTile; i += kTileRows) {
    const int64_t t = t0 + i, g = g0 + threadIdx.x;
    if (t < tokens && g < groups) tile[i][threadIdx.x] = xs[t * groups + g];
  }
  __syncthreads();
  for (int i = static_cast<int>(threadIdx.y); i < kTile; i += kTileRows) {
    const int64_t g = g0 + i, t = t0 + threadIdx.x;
    if (t < tokens && g < groups) xs_t[g * tokens + t] = tile[threadIdx.x][i];
  }
}

cudaError_t ToCudaError(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      return cudaSuccess;
    case CUBLAS_STATUS_NOT_SUPPORTED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return cudaErrorNotSupported;
    case CUBLAS_STATUS_INVALID_VALUE:
      return cudaErrorInvalidValue;
    case CUBLAS_STATUS_ALLOC_FAILED:
      return cudaErrorMemoryAllocation;
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return cudaErrorLaunchFailure;
    default:
      return cudaErrorUnknown;
  }
}

// One (tokens, in, out) shape's descriptors and heuristic choice. status != SUCCESS caches a refusal.
struct Plan {
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  uint64_t last_use = 0;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  ~Plan() {
    if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  }
};

#define OCTET_LT_RETURN_IF_ERROR(expr)                                      \
  do {                                                                      \
    const cublasStatus_t octet_lt_status_ = (expr);                         \
    if (octet_lt_status_ != CUBLAS_STATUS_SUCCESS) return octet_lt_status_; \
  } while (0)

template <typename T>
cublasStatus_t SetDesc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T& value) {
  return cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(value));
}

cublasStatus_t SetScalePointers(cublasLtMatmulDesc_t desc, const float* a_scale, const float* b_scale) {
  const void* a = a_scale;
  const void* b = b_scale;
  OCTET_LT_RETURN_IF_ERROR(SetDesc(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a));
  return SetDesc(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, b);
}

// Builds the descriptors and asks the heuristic for an algorithm; the scale pointers are the call's (cuBLASLt wants
// them set for block scaling), the alignment preferences promise only kAlignment so the algorithm suits any call.
cublasStatus_t BuildPlan(cublasLtHandle_t handle, Plan& p, int64_t tokens, int64_t in, int64_t out, const float* ws_lt,
                         const float* xs_t) {
  OCTET_LT_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  OCTET_LT_RETURN_IF_ERROR(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T));
  OCTET_LT_RETURN_IF_ERROR(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N));
  const int8_t fast_accum = 0;
  OCTET_LT_RETURN_IF_ERROR(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, fast_accum));
  const int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  const int32_t b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  OCTET_LT_RETURN_IF_ERROR(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, a_mode));
  OCTET_LT_RETURN_IF_ERROR(SetDesc(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, b_mode));
  OCTET_LT_RETURN_IF_ERROR(SetScalePointers(p.desc, ws_lt, xs_t));

  const auto k = static_cast<uint64_t>(in), n = static_cast<uint64_t>(out), t = static_cast<uint64_t>(tokens);
  OCTET_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, k, n, in));
  OCTET_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, k, t, in));
  OCTET_LT_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&p.d, CUDA_R_32F, n, t, out));

  cublasLtMatmulPreference_t pref = nullptr;
  OCTET_LT_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t max_ws = Fp8GemmLt::kLtWorkspaceBytes;
  const uint32_t align = Fp8GemmLt::kAlignment;
  cublasStatus_t s =
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws, sizeof(max_ws));
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  if (s == CUBLAS_STATUS_SUCCESS) {
    s = cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  if (returned == 0 || result.state != CUBLAS_STATUS_SUCCESS || result.workspaceSize > max_ws) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  p.algo = result.algo;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

struct Fp8GemmLt::Impl {
  cublasLtHandle_t handle = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Plan> plans;
  uint64_t clock = 0;
  const char* last_status = "";
};

Fp8GemmLt::Fp8GemmLt() : impl_(std::make_unique<Impl>()) {
  const cublasStatus_t s = cublasLtCreate(&impl_->handle);
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s:%d: cuBLASLt error %s in cublasLtCreate\n", __FILE__, __LINE__, cublasLtGetStatusName(s));
    std::abort();
  }
}

Fp8GemmLt::~Fp8GemmLt() {
  impl_->plans.clear();  // descriptors before the handle
  cublasLtDestroy(impl_->handle);
}

bool Fp8GemmLt::Supports(int64_t tokens, int64_t in, int64_t out_features) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  return tokens >= 4 && tokens % 4 == 0 && in >= kBlock && out_features >= 16 && in % kBlock == 0 &&
         out_features % 16 == 0 && tokens <= kMax && in <= kMax && out_features <= kMax;
}

size_t Fp8GemmLt::WorkspaceBytes(int64_t tokens, int64_t in, int64_t /*out_features*/) {
  const auto scales = static_cast<size_t>(tokens > 0 ? tokens : 0) * static_cast<size_t>(CeilDiv(in, kBlock));
  return AlignUp(scales * sizeof(float), 256) + kLtWorkspaceBytes;
}

size_t Fp8GemmLt::WeightScaleBytes(int64_t in, int64_t out_features) {
  const int64_t l4 = AlignUp(static_cast<size_t>(CeilDiv(in, kBlock)), 4);
  return static_cast<size_t>(CeilDiv(out_features, kBlock) * l4) * sizeof(float);
}

cudaError_t Fp8GemmLt::PrepareWeightScales(const float* ws, float* ws_lt, int64_t in, int64_t out_features,
                                           cudaStream_t stream) {
  if (in <= 0 || out_features <= 0 || ws == nullptr || ws_lt == nullptr) return cudaErrorInvalidValue;
  const auto groups = static_cast<size_t>(CeilDiv(in, kBlock));
  const size_t l4 = AlignUp(groups, 4);
  const auto rows = static_cast<size_t>(CeilDiv(out_features, kBlock));
  if (l4 != groups) CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ws_lt, 0, WeightScaleBytes(in, out_features), stream));
  return cudaMemcpy2DAsync(ws_lt, l4 * sizeof(float), ws, groups * sizeof(float), groups * sizeof(float), rows,
                           cudaMemcpyDeviceToDevice, stream);
}

cudaError_t Fp8GemmLt::Run(const uint8_t* xq, const float* xs, const uint8_t* wq, const float* ws_lt, float* y,
                           int64_t tokens, int64_t in, int64_t out_features, void* workspace, size_t workspace_bytes,
                           cudaStream_t stream) {
  if (!Supports(tokens, in, out_features)) return cudaErrorNotSupported;
  if (xq == nullptr || xs == nullptr || wq == nullptr || ws_lt == nullptr || y == nullptr || workspace == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (!Aligned(xq) || !Aligned(wq) || !Aligned(ws_lt) || !Aligned(y) || !Aligned(workspace)) {
    return cudaErrorInvalidValue;
  }
  if (workspace_bytes < WorkspaceBytes(tokens, in, out_features)) return cudaErrorInvalidValue;

  const int64_t groups = in / kBlock;
  auto* xs_t = static_cast<float*>(workspace);
  void* lt_workspace =
      static_cast<char*>(workspace) + AlignUp(static_cast<size_t>(tokens * groups) * sizeof(float), 256);

  Impl& im = *impl_;
  const auto key = std::make_tuple(tokens, in, out_features);
  auto it = im.plans.find(key);
  if (it == im.plans.end()) {
    if (im.plans.size() >= kMaxPlans) {  // evict the least recently used plan
      auto oldest = im.plans.begin();
      for (auto p = im.plans.begin(); p != im.plans.end(); ++p) {
        if (p->second.last_use < oldest->second.last_use) oldest = p;
      }
      im.plans.erase(oldest);
    }
    it = im.plans.try_emplace(key).first;
    it->second.status = BuildPlan(im.handle, it->second, tokens, in, out_features, ws_lt, xs_t);
  }
  Plan& plan = it->second;
  plan.last_use = ++im.clock;
  if (plan.status != CUBLAS_STATUS_SUCCESS) {
    im.last_status = cublasLtGetStatusName(plan.status);
    return ToCudaError(plan.status);
  }

  const dim3 block(kTile, kTileRows);
  const dim3 grid(static_cast<unsigned>(CeilDiv(tokens, kTile)), static_cast<unsigned>(CeilDiv(groups, kTile)));
  TransposeScalesKernel<<<grid, block, 0, stream>>>(xs, xs_t, tokens, groups);
  const cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) return launch;

  cublasStatus_t s = SetScalePointers(plan.desc, ws_lt, xs_t);
  if (s == CUBLAS_STATUS_SUCCESS) {
    const float alpha = 1.0f, beta = 0.0f;
    s = cublasLtMatmul(im.handle, plan.desc, &alpha, wq, plan.a, xq, plan.b, &beta, y, plan.d, y, plan.d, &plan.algo,
                       lt_workspace, kLtWorkspaceBytes, stream);
  }
  if (s != CUBLAS_STATUS_SUCCESS) {
    im.last_status = cublasLtGetStatusName(s);
    return ToCudaError(s);
  }
  return cudaSuccess;
}

const char* Fp8GemmLt::LastLtStatus() const { return impl_->last_status; }

}  // namespace octet::cuda
