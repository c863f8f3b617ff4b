#include "worker/runtime/cuda_backend.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/log.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cuda/dense_gemm_lt.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/fp8_gemm_lt.h"
#include "kernels/cuda/fp8_gemv.h"
#include "kernels/cuda/fp8_quant.h"
#include "kernels/cuda/fused_norm_act.h"
#include "kernels/cuda/gated_delta.h"
#include "kernels/cuda/kv_cache.h"
#include "kernels/cuda/linear_dense.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/paged_attention_prefill.h"
#include "kernels/cuda/sampling.h"
#include "worker/runtime/backend_checks.h"
#include "worker/runtime/cpu_backend.h"

namespace octet {
namespace {

// Tokens from which an FP8 linear layer goes to cuBLASLt's block-scaled GEMM instead of our GEMV in chunks of 8.
constexpr int64_t kFp8GemmMinTokens = 16;

void Check(cudaError_t err, const char* what) {
  OCTET_CHECK(err == cudaSuccess) << "CUDA error in " << what << ": " << cudaGetErrorName(err) << " ("
                                  << cudaGetErrorString(err) << ")";
}

void CheckDevice(const Tensor& t, const char* what) {
  OCTET_CHECK(t.defined() && t.device() == Device::kCuda)
      << what << " must be a CUDA tensor, got " << (t.defined() ? t.DebugString() : std::string("none"));
}

void CheckF32(const Tensor& t, const char* what) {
  CheckDevice(t, what);
  OCTET_CHECK(t.dtype() == DType::kF32) << what << " must be fp32 on the CUDA backend, got " << t.DebugString();
}

const float* F32(const Tensor& t) { return t.data_as<const float>(); }
float* F32Mut(const Tensor& t) { return t.data_as<float>(); }
const int32_t* I32(const Tensor& t) { return t.data_as<const int32_t>(); }

cuda::KvCacheDType KvDType(const Tensor& cache) {
  switch (cache.dtype()) {
    case DType::kF32:
      return cuda::KvCacheDType::kF32;
    case DType::kBF16:
      return cuda::KvCacheDType::kBF16;
    case DType::kF8E4M3:
      return cuda::KvCacheDType::kFp8E4M3;
    default:
      OCTET_CHECK(false) << "the CUDA backend's KV cache holds fp32, bf16 or fp8_e4m3 values, got "
                         << cache.DebugString();
  }
  return cuda::KvCacheDType::kF32;
}

// Both tensors on this GPU, then the shapes every backend checks.
void CheckCudaKvLayer(const KvLayer& cache, int64_t kv_heads, int64_t head_dim) {
  CheckDevice(cache.k, "KV cache keys");
  CheckDevice(cache.v, "KV cache values");
  CheckKvLayer(cache, kv_heads, head_dim);
}

}  // namespace

struct CudaBackend::State {
  CudaBackendOptions options;
  cudaStream_t stream = nullptr;
  std::unique_ptr<cuda::Fp8GemmLt> gemm_lt;
  std::unique_ptr<cuda::DenseGemmLt> dense_lt;

  // Op profile (options.profile_ops): a pair of events around each op, resolved at the next host sync.
  struct Pending {
    const char* op;
    cudaEvent_t start, stop;
  };
  std::vector<Pending> pending;
  bool capturing = false;
  std::vector<cudaGraphExec_t> graphs;
  std::vector<cudaEvent_t> spare_events;
  std::map<std::string, std::pair<double, int64_t>> totals;  // op -> (ms, calls)

  cudaEvent_t Event() {
    if (spare_events.empty()) {
      cudaEvent_t e;
      Check(cudaEventCreate(&e), "cudaEventCreate");
      return e;
    }
    cudaEvent_t e = spare_events.back();
    spare_events.pop_back();
    return e;
  }
  // After a stream sync: adds the finished ops' times to the totals.
  void Resolve() {
    for (const Pending& p : pending) {
      float ms = 0;
      Check(cudaEventElapsedTime(&ms, p.start, p.stop), "cudaEventElapsedTime");
      auto& t = totals[p.op];
      t.first += ms;
      ++t.second;
      spare_events.push_back(p.start);
      spare_events.push_back(p.stop);
    }
    pending.clear();
  }
};

namespace {

// Times the GPU work queued in its scope under `op` when profiling.
class OpScope {
 public:
  OpScope(CudaBackend::State& state, const char* op)
      : state_(state), op_(op), on_(state.options.profile_ops && !state.capturing) {
    if (!on_) return;
    start_ = state_.Event();
    Check(cudaEventRecord(start_, state_.stream), "cudaEventRecord");
  }
  ~OpScope() {
    if (!on_) return;
    cudaEvent_t stop = state_.Event();
    Check(cudaEventRecord(stop, state_.stream), "cudaEventRecord");
    state_.pending.push_back({op_, start_, stop});
  }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  CudaBackend::State& state_;
  const char* op_;
  const bool on_;
  cudaEvent_t start_ = nullptr;
};

}  // namespace

bool CudaDeviceAvailable() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

CudaBackend::CudaBackend(const CudaBackendOptions& options) : state_(std::make_unique<State>()) {
  state_->options = options;
  const int device = options.device;
  Check(cudaSetDevice(device), "cudaSetDevice");
  Check(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  // Keep freed memory in the pool instead of returning it to the driver at every synchronisation.
  cudaMemPool_t pool;
  Check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  uint64_t threshold = UINT64_MAX;
  Check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold), "cudaMemPoolSetAttribute");
  state_->gemm_lt = std::make_unique<cuda::Fp8GemmLt>();
  state_->dense_lt = std::make_unique<cuda::DenseGemmLt>();
  cudaDeviceProp prop;
  Check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  OCTET_LOG(INFO, "cuda") << "GPU " << device << ": " << prop.name << ", " << (prop.totalGlobalMem >> 20) << " MiB, sm_"
                          << prop.major << prop.minor;
}

CudaBackend::~CudaBackend() {
  // Tensors still alive free themselves on this stream later, so it stays (a stream is a few bytes of driver state).
  cudaStreamSynchronize(state_->stream);
  for (cudaGraphExec_t g : state_->graphs) cudaGraphExecDestroy(g);
}

void CudaBackend::CopyFromHost(const void* host, Tensor& dst) {
  CheckDevice(dst, "CopyFromHost destination");
  OCTET_CHECK(!state_->capturing) << "CopyFromHost inside a graph capture";
  if (dst.nbytes() > 0) {
    Check(cudaMemcpyAsync(dst.data(), host, dst.nbytes(), cudaMemcpyHostToDevice, state_->stream), "CopyFromHost");
  }
}

bool CudaBackend::BeginCapture() {
  OCTET_CHECK(!state_->capturing) << "nested graph capture";
  Check(cudaStreamBeginCapture(state_->stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
  state_->capturing = true;
  return true;
}

int32_t CudaBackend::EndCapture() {
  OCTET_CHECK(state_->capturing) << "EndCapture without BeginCapture";
  cudaGraph_t graph = nullptr;
  state_->capturing = false;
  Check(cudaStreamEndCapture(state_->stream, &graph), "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  Check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  Check(cudaGraphDestroy(graph), "cudaGraphDestroy");
  state_->graphs.push_back(exec);
  return static_cast<int32_t>(state_->graphs.size()) - 1;
}

std::vector<int32_t> CudaBackend::SampleTokens(const Tensor& logits, const std::vector<TokenSampling>& rows) {
  CheckF32(logits, "SampleTokens logits");
  const int64_t n = static_cast<int64_t>(rows.size());
  OCTET_CHECK(logits.ndim() == 2 && logits.dim(0) == n)
      << "SampleTokens: " << n << " rows for " << logits.DebugString();
  std::vector<cuda::SamplingRow> params(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    params[i] = {rows[i].temperature, rows[i].top_k, rows[i].top_p, rows[i].seed};
  }
  Tensor d_params = Empty(DType::kU8, {static_cast<int64_t>(params.size() * sizeof(cuda::SamplingRow))});
  CopyFromHost(params.data(), d_params);
  Tensor d_tokens = Empty(DType::kI32, {n});
  const size_t bytes = cuda::SampleRowsWorkspaceBytes(n, logits.dim(1));
  Tensor workspace = Empty(DType::kU8, {static_cast<int64_t>(bytes)});
  {
    const OpScope scope(*state_, "SampleTokens");
    Check(cuda::SampleRows(F32(logits), n, logits.dim(1), d_params.data_as<const cuda::SamplingRow>(),
                           d_tokens.data_as<int32_t>(), workspace.data(), bytes, state_->stream),
          "SampleRows");
  }
  std::vector<int32_t> tokens(rows.size());
  Download(d_tokens, tokens.data());
  return tokens;
}

void CudaBackend::ReplayGraph(int32_t graph) {
  OCTET_CHECK(graph >= 0 && graph < static_cast<int32_t>(state_->graphs.size())) << "no graph " << graph;
  Check(cudaGraphLaunch(state_->graphs[static_cast<size_t>(graph)], state_->stream), "cudaGraphLaunch");
}

DeviceMemory CudaBackend::MemoryInfo() {
  size_t free_bytes = 0, total_bytes = 0;
  Check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  return {static_cast<int64_t>(free_bytes), static_cast<int64_t>(total_bytes)};
}

Tensor CudaBackend::Empty(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(ShapeNumel(shape)) * DTypeSize(dtype);
  void* ptr = nullptr;
  cudaStream_t stream = state_->stream;
  Check(cudaMallocAsync(&ptr, std::max<size_t>(bytes, 16), stream), "cudaMallocAsync");
  auto buffer = std::make_shared<Buffer>(ptr, bytes, Device::kCuda, [stream](void* p) { cudaFreeAsync(p, stream); });
  return Tensor(std::move(buffer), dtype, std::move(shape));
}

Tensor CudaBackend::Zeros(DType dtype, Shape shape) {
  Tensor t = Empty(dtype, std::move(shape));
  Check(cudaMemsetAsync(t.data(), 0, t.nbytes(), state_->stream), "cudaMemsetAsync");
  return t;
}

Tensor CudaBackend::Upload(DType host_dtype, const void* host_data, Shape shape) {
  OCTET_CHECK(!state_->capturing) << "Upload inside a graph capture";
  if (host_dtype == DType::kI32 || host_dtype == DType::kI64 || host_dtype == DType::kU8) {
    Tensor t = Empty(host_dtype, std::move(shape));
    if (t.nbytes() > 0) {
      Check(cudaMemcpyAsync(t.data(), host_data, t.nbytes(), cudaMemcpyHostToDevice, state_->stream), "Upload");
    }
    return t;
  }
  const int64_t n = ShapeNumel(shape);
  std::vector<float> host(static_cast<size_t>(n));
  ConvertToFloat(host_dtype, host_data, host.data(), n);
  Tensor t = Empty(DType::kF32, std::move(shape));
  // From pageable memory the copy has left `host` when cudaMemcpyAsync returns.
  if (n > 0)
    Check(cudaMemcpyAsync(t.data(), host.data(), t.nbytes(), cudaMemcpyHostToDevice, state_->stream), "Upload");
  return t;
}

LinearWeight CudaBackend::UploadLinear(DType host_dtype, const void* host_data, Shape shape) {
  OCTET_CHECK(shape.size() == 2) << "a linear weight is 2-D, got " << ShapeToString(shape);
  if (host_dtype != DType::kBF16) return LinearWeight{Upload(host_dtype, host_data, std::move(shape))};
  // bf16 stays bf16: half the memory, and the GEMM widens it exactly.
  Tensor t = Empty(DType::kBF16, std::move(shape));
  if (t.nbytes() > 0) {
    Check(cudaMemcpyAsync(t.data(), host_data, t.nbytes(), cudaMemcpyHostToDevice, state_->stream), "UploadLinear");
  }
  return LinearWeight{t};
}

LinearWeight CudaBackend::QuantizeLinearFp8(DType host_dtype, const void* host_data, Shape shape) {
  OCTET_CHECK(shape.size() == 2) << "a linear weight is 2-D, got " << ShapeToString(shape);
  const int64_t n = ShapeNumel(shape);
  std::vector<float> w(static_cast<size_t>(n));
  ConvertToFloat(host_dtype, host_data, w.data(), n);
  std::vector<uint8_t> q(static_cast<size_t>(n));
  std::vector<float> s(static_cast<size_t>(ShapeNumel(Fp8ScaleShape(shape))));
  cpu::QuantizeWeightFp8(w.data(), shape[0], shape[1], q.data(), s.data());
  return UploadLinearFp8(q.data(), s.data(), std::move(shape));
}

LinearWeight CudaBackend::UploadLinearFp8(const void* fp8_data, const float* scales, Shape shape) {
  OCTET_CHECK(shape.size() == 2) << "a linear weight is 2-D, got " << ShapeToString(shape);
  LinearWeight out{Empty(DType::kF8E4M3, shape), Empty(DType::kF32, Fp8ScaleShape(shape))};
  if (out.weight.nbytes() > 0) {
    Check(cudaMemcpyAsync(out.weight.data(), fp8_data, out.weight.nbytes(), cudaMemcpyHostToDevice, state_->stream),
          "UploadLinearFp8");
  }
  if (out.scale.nbytes() > 0) {
    Check(cudaMemcpyAsync(out.scale.data(), scales, out.scale.nbytes(), cudaMemcpyHostToDevice, state_->stream),
          "UploadLinearFp8");
  }
  return out;
}

void CudaBackend::Download(const Tensor& src, void* host_dst) {
  CheckDevice(src, "Download source");
  OCTET_CHECK(!state_->capturing) << "Download inside a graph capture";
  if (src.nbytes() > 0) {
    Check(cudaMemcpyAsync(host_dst, src.data(), src.nbytes(), cudaMemcpyDeviceToHost, state_->stream), "Download");
  }
  Check(cudaStreamSynchronize(state_->stream), "Download");
  state_->Resolve();
}

void CudaBackend::Synchronize() {
  Check(cudaStreamSynchronize(state_->stream), "Synchronize");
  state_->Resolve();
}

std::string CudaBackend::ProfileReport() {
  Synchronize();
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> rows(state_->totals.begin(), state_->totals.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  double total = 0;
  for (const auto& r : rows) total += r.second.first;
  std::ostringstream out;
  out << "op                        GPU ms    calls   share\n";
  for (const auto& [op, t] : rows) {
    char line[128];
    std::snprintf(line, sizeof(line), "%-24s %8.3f %8lld  %5.1f%%\n", op.c_str(), t.first,
                  static_cast<long long>(t.second), 100.0 * t.first / std::max(total, 1e-9));
    out << line;
  }
  state_->totals.clear();
  return out.str();
}

void CudaBackend::Embedding(const Tensor& table, const Tensor& ids, Tensor& out) { GatherRows(table, ids, out); }

void CudaBackend::RmsNorm(const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out) {
  const OpScope scope(*state_, "RmsNorm");
  CheckF32(x, "RmsNorm input");
  CheckF32(w, "RmsNorm weight");
  CheckF32(out, "RmsNorm output");
  const int64_t cols = x.dim(-1);
  OCTET_CHECK(w.numel() == cols && out.numel() == x.numel())
      << "RmsNorm shapes " << x.DebugString() << " " << w.DebugString() << " " << out.DebugString();
  Check(cuda::RmsNormF32(F32(x), F32(w), F32Mut(out), x.numel() / cols, cols, eps, offset, state_->stream), "RmsNorm");
}

void CudaBackend::Linear(const Tensor& x, const LinearWeight& w, Tensor& out) {
  CheckF32(x, "Linear input");
  CheckF32(out, "Linear output");
  CheckDevice(w.weight, "Linear weight");
  const int64_t in = x.dim(-1);
  const int64_t tokens = x.numel() / in;
  const int64_t out_features = w.weight.dim(0);
  OCTET_CHECK(w.weight.ndim() == 2 && w.weight.dim(1) == in && out.numel() == tokens * out_features)
      << "Linear shapes " << x.DebugString() << " " << w.weight.DebugString() << " " << out.DebugString();
  if (w.fp8()) {
    LinearFp8(x, nullptr, w, out, tokens, in, out_features);
    return;
  }
  const OpScope scope(*state_, "LinearDense");
  switch (w.weight.dtype()) {
    case DType::kF32:
      Check(cuda::LinearDense(F32(x), w.weight.data_as<const float>(), F32Mut(out), tokens, in, out_features,
                              state_->stream),
            "Linear");
      return;
    case DType::kBF16:
      if (tokens > cuda::kDenseGemvMaxTokens && in % 8 == 0 && out_features % 8 == 0) {
        // Many rows (the LM head of a large batch, recipe none): tensor cores at fp32 precision (dense_gemm_lt.h).
        const size_t bytes = cuda::DenseGemmLt::WorkspaceBytes(tokens, in, out_features);
        Tensor workspace = Empty(DType::kU8, {static_cast<int64_t>(bytes)});
        const cudaError_t err =
            state_->dense_lt->Run(F32(x), w.weight.data_as<const __nv_bfloat16>(), F32Mut(out), tokens, in,
                                  out_features, workspace.data(), bytes, state_->stream);
        if (err == cudaSuccess) return;
        cudaGetLastError();  // clear it; the SIMT GEMM below computes the same
      }
      Check(cuda::LinearDense(F32(x), w.weight.data_as<const __nv_bfloat16>(), F32Mut(out), tokens, in, out_features,
                              state_->stream),
            "Linear");
      return;
    default:
      OCTET_CHECK(false) << "the CUDA backend's linear weights are fp8_e4m3, bf16 or fp32, got "
                         << w.weight.DebugString();
  }
}

void CudaBackend::LinearFp8Input(const Tensor& x, const Fp8Activation& x_fp8, const LinearWeight& w, Tensor& out) {
  if (!w.fp8() || !x_fp8.defined()) {
    Linear(x, w, out);
    return;
  }
  CheckF32(x, "Linear input");
  CheckF32(out, "Linear output");
  const int64_t in = x.dim(-1);
  const int64_t tokens = x.numel() / in;
  const int64_t out_features = w.weight.dim(0);
  OCTET_CHECK(w.weight.ndim() == 2 && w.weight.dim(1) == in && out.numel() == tokens * out_features)
      << "Linear shapes " << x.DebugString() << " " << w.weight.DebugString() << " " << out.DebugString();
  OCTET_CHECK(x_fp8.q.dtype() == DType::kF8E4M3 && x_fp8.q.numel() == x.numel() &&
              x_fp8.scale.numel() == tokens * cpu::Fp8NumBlocks(in))
      << "the FP8 copy " << x_fp8.q.DebugString() << " does not match " << x.DebugString();
  LinearFp8(x, &x_fp8, w, out, tokens, in, out_features);
}

void CudaBackend::PrepareFp8(Fp8Activation& a, int64_t rows, int64_t cols) {
  const Shape q_shape = {rows, cols}, s_shape = {rows, cpu::Fp8NumBlocks(cols)};
  if (!a.q.defined() || a.q.shape() != q_shape) a.q = Empty(DType::kF8E4M3, q_shape);
  if (!a.scale.defined() || a.scale.shape() != s_shape) a.scale = Empty(DType::kF32, s_shape);
}

void CudaBackend::AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out,
                             Fp8Activation* out_fp8) {
  const OpScope scope(*state_, "AddRmsNorm");
  CheckF32(residual, "AddRmsNorm residual");
  CheckF32(x, "AddRmsNorm input");
  CheckF32(w, "AddRmsNorm weight");
  CheckF32(out, "AddRmsNorm output");
  const int64_t cols = residual.dim(-1), rows = residual.numel() / cols;
  OCTET_CHECK(x.numel() == residual.numel() && out.numel() == residual.numel() && w.numel() == cols &&
              out.data() != residual.data() && out.data() != x.data())
      << "AddRmsNorm shapes " << residual.DebugString() << " " << x.DebugString() << " " << out.DebugString();
  uint8_t* q = nullptr;
  float* scales = nullptr;
  if (out_fp8) {
    PrepareFp8(*out_fp8, rows, cols);
    q = out_fp8->q.data_as<uint8_t>();
    scales = F32Mut(out_fp8->scale);
  }
  Check(cuda::AddRmsNormFp8(F32Mut(residual), F32(x), F32(w), F32Mut(out), q, scales, rows, cols, eps, offset,
                            state_->stream),
        "AddRmsNorm");
}

void CudaBackend::SiluMulFp8(const Tensor& gate_up, Tensor& out, Fp8Activation* out_fp8) {
  const OpScope scope(*state_, "SiluMulFp8");
  CheckF32(gate_up, "SiluMul input");
  CheckF32(out, "SiluMul output");
  const int64_t inter = out.dim(-1), tokens = out.numel() / inter;
  OCTET_CHECK(gate_up.dim(-1) == 2 * inter && gate_up.numel() == 2 * out.numel())
      << "SiluMul shapes " << gate_up.DebugString() << " " << out.DebugString();
  uint8_t* q = nullptr;
  float* scales = nullptr;
  if (out_fp8) {
    PrepareFp8(*out_fp8, tokens, inter);
    q = out_fp8->q.data_as<uint8_t>();
    scales = F32Mut(out_fp8->scale);
  }
  Check(cuda::SiluMulFp8(F32(gate_up), F32Mut(out), q, scales, tokens, inter, state_->stream), "SiluMulFp8");
}

void CudaBackend::LinearFp8(const Tensor& x, const Fp8Activation* x_fp8, const LinearWeight& w, Tensor& out,
                            int64_t tokens, int64_t in, int64_t out_features) {
  const Shape scale_shape = Fp8ScaleShape(w.weight.shape());
  OCTET_CHECK(w.scale.defined() && w.scale.dtype() == DType::kF32 && w.scale.shape() == scale_shape)
      << "an fp8_e4m3 weight " << w.weight.DebugString() << " needs fp32 block scales " << ShapeToString(scale_shape);
  cudaStream_t stream = state_->stream;
  const int64_t groups = cpu::Fp8NumBlocks(in);
  Tensor xq, xs;
  if (x_fp8 != nullptr) {  // the producer quantized x already
    xq = x_fp8->q;
    xs = x_fp8->scale;
  } else {
    xq = Empty(DType::kF8E4M3, {tokens, in});
    xs = Empty(DType::kF32, {tokens, groups});
    const OpScope quant_scope(*state_, "QuantizeActivationFp8");
    Check(cuda::QuantizeActivationFp8(F32(x), tokens, in, xq.data_as<uint8_t>(), F32Mut(xs), stream),
          "QuantizeActivationFp8");
  }
  const auto* wq = w.weight.data_as<const uint8_t>();
  const float* ws = F32(w.scale);
  // cuBLASLt takes whole multiples of 4 tokens; the last 0-3 rows (and everything when it refuses) go to the GEMV.
  int64_t gemv_from = 0;
  const int64_t lt_tokens = tokens / 4 * 4;
  if (state_->options.fp8_gemm_cublaslt && tokens >= kFp8GemmMinTokens &&
      cuda::Fp8GemmLt::Supports(lt_tokens, in, out_features)) {
    const OpScope scope(*state_, "LinearFp8Cublaslt");
    const size_t bytes = cuda::Fp8GemmLt::WorkspaceBytes(lt_tokens, in, out_features);
    Tensor workspace = Empty(DType::kU8, {static_cast<int64_t>(bytes)});
    // cuBLASLt wants each row of block scales padded to a multiple of 4; Qwen's shapes need no padding.
    const float* ws_lt = ws;
    Tensor padded_scales;
    if (cuda::Fp8GemmLt::WeightScaleBytes(in, out_features) != w.scale.nbytes()) {
      padded_scales = Empty(DType::kU8, {static_cast<int64_t>(cuda::Fp8GemmLt::WeightScaleBytes(in, out_features))});
      Check(cuda::Fp8GemmLt::PrepareWeightScales(ws, padded_scales.data_as<float>(), in, out_features, stream),
            "PrepareWeightScales");
      ws_lt = padded_scales.data_as<float>();
    }
    const cudaError_t err = state_->gemm_lt->Run(xq.data_as<uint8_t>(), F32(xs), wq, ws_lt, F32Mut(out), lt_tokens, in,
                                                 out_features, workspace.data(), bytes, stream);
    if (err == cudaSuccess) {
      gemv_from = lt_tokens;
    } else {
      OCTET_LOG(WARNING, "cuda") << "cuBLASLt refused the FP8 GEMM " << lt_tokens << "x" << in << "x" << out_features
                                 << " (" << cudaGetErrorName(err) << ", " << state_->gemm_lt->LastLtStatus()
                                 << "); using the GEMV";
      cudaGetLastError();  // clear it
    }
  }
  const OpScope scope(*state_, "LinearFp8Gemv");
  for (int64_t t0 = gemv_from; t0 < tokens; t0 += cuda::kFp8GemvMaxTokens) {
    const int64_t n = std::min(cuda::kFp8GemvMaxTokens, tokens - t0);
    Check(cuda::Fp8Gemv(xq.data_as<uint8_t>() + t0 * in, F32(xs) + t0 * groups, wq, ws, F32Mut(out) + t0 * out_features,
                        n, in, out_features, stream),
          "Fp8Gemv");
  }
}

void CudaBackend::Rope(Tensor& q, Tensor& k, const Tensor& positions, int32_t rotary_dim, float theta) {
  const OpScope scope(*state_, "Rope");
  CheckF32(q, "Rope queries");
  CheckF32(k, "Rope keys");
  const int64_t tokens = q.dim(0);
  OCTET_CHECK(q.ndim() == 3 && k.ndim() == 3 && k.dim(0) == tokens && positions.numel() == tokens &&
              rotary_dim <= q.dim(2) && rotary_dim % 2 == 0)
      << "Rope shapes " << q.DebugString() << " " << k.DebugString() << " rotary_dim " << rotary_dim;
  Check(cuda::Rope(F32Mut(q), I32(positions), tokens, q.dim(1), q.dim(2), rotary_dim, theta, state_->stream), "Rope");
  Check(cuda::Rope(F32Mut(k), I32(positions), tokens, k.dim(1), k.dim(2), rotary_dim, theta, state_->stream), "Rope");
}

void CudaBackend::StoreKv(const Tensor& k, const Tensor& v, const AttentionBatch& batch, KvLayer& cache) {
  const OpScope scope(*state_, "StoreKv");
  CheckF32(k, "StoreKv keys");
  CheckF32(v, "StoreKv values");
  OCTET_CHECK(k.ndim() == 3 && v.shape() == k.shape() && batch.slot_mapping.numel() == k.dim(0))
      << "StoreKv shapes " << k.DebugString() << " " << v.DebugString() << " slots "
      << batch.slot_mapping.DebugString();
  const int64_t kv_heads = k.dim(1), head_dim = k.dim(2);
  CheckCudaKvLayer(cache, kv_heads, head_dim);
  const bool fp8 = cache.k.dtype() == DType::kF8E4M3;
  Check(cuda::StoreKv(F32(k), F32(v), I32(batch.slot_mapping), k.dim(0), kv_heads, head_dim, KvDType(cache.k),
                      cache.k.data(), cache.v.data(), fp8 ? F32Mut(cache.k_scale) : nullptr,
                      fp8 ? F32Mut(cache.v_scale) : nullptr, state_->stream),
        "StoreKv");
}

void CudaBackend::PagedAttention(const Tensor& q, const KvLayer& cache, const AttentionBatch& batch, float scale,
                                 Tensor& out) {
  const OpScope scope(*state_, "PagedAttention");
  CheckF32(q, "PagedAttention queries");
  CheckF32(out, "PagedAttention output");
  OCTET_CHECK(q.ndim() == 3 && out.numel() == q.numel())
      << "PagedAttention shapes " << q.DebugString() << " " << out.DebugString();
  const int64_t q_heads = q.dim(1), head_dim = q.dim(2);
  CheckDevice(cache.k, "PagedAttention cache");
  const int64_t kv_heads = cache.k.dim(2);
  OCTET_CHECK(q_heads % kv_heads == 0) << q_heads << " query heads over " << kv_heads << " kv heads";
  CheckCudaKvLayer(cache, kv_heads, head_dim);
  const bool fp8 = cache.k.dtype() == DType::kF8E4M3;
  cuda::PagedAttentionArgs args;
  args.q = F32(q);
  args.k_cache = cache.k.data();
  args.v_cache = cache.v.data();
  args.k_scale = fp8 ? F32(cache.k_scale) : nullptr;
  args.v_scale = fp8 ? F32(cache.v_scale) : nullptr;
  args.cache_dtype = KvDType(cache.k);
  args.query_start = I32(batch.query_start);
  args.context_lens = I32(batch.context_lens);
  args.block_tables = I32(batch.block_tables);
  args.max_blocks = batch.block_tables.dim(1);
  args.num_seqs = batch.num_seqs;
  args.num_tokens = q.dim(0);
  args.q_heads = q_heads;
  args.kv_heads = kv_heads;
  args.head_dim = head_dim;
  args.block_size = batch.block_size;
  args.max_query_len = batch.max_query_len;
  args.max_context_len = batch.max_context_len;
  args.scale = scale;
  args.out = F32Mut(out);
  if (cuda::PagedAttentionPrefillSupports(args)) {
    // Long query chunks of a 16-bit or FP8 cache: the tensor-core kernel (q and P rounded to bf16, fp32 softmax and
    // accumulation; paged_attention_prefill.h states the tolerance).
    Check(cuda::PagedAttentionPrefill(args, state_->stream), "PagedAttentionPrefill");
    return;
  }
  Tensor workspace;
  const size_t bytes = cuda::PagedAttentionWorkspaceBytes(args);
  if (bytes > 0) {
    workspace = Empty(DType::kU8, {static_cast<int64_t>(bytes)});
    args.workspace = workspace.data();
    args.workspace_bytes = bytes;
  }
  Check(cuda::PagedAttention(args, state_->stream), "PagedAttention");
}

void CudaBackend::SiluMul(const Tensor& gate_up, Tensor& out) {
  const OpScope scope(*state_, "SiluMul");
  CheckF32(gate_up, "SiluMul input");
  CheckF32(out, "SiluMul output");
  const int64_t inter = out.dim(-1);
  OCTET_CHECK(gate_up.dim(-1) == 2 * inter && gate_up.numel() == 2 * out.numel())
      << "SiluMul shapes " << gate_up.DebugString() << " " << out.DebugString();
  Check(cuda::SiluMul(F32(gate_up), F32Mut(out), out.numel() / inter, inter, state_->stream), "SiluMul");
}

void CudaBackend::Add(const Tensor& a, const Tensor& b, Tensor& out) {
  const OpScope scope(*state_, "Add");
  CheckF32(a, "Add input");
  CheckF32(b, "Add input");
  CheckF32(out, "Add output");
  OCTET_CHECK(a.numel() == b.numel() && a.numel() == out.numel()) << "Add shapes";
  Check(cuda::Add(F32(a), F32(b), F32Mut(out), a.numel(), state_->stream), "Add");
}

void CudaBackend::GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) {
  const OpScope scope(*state_, "GatherRows");
  CheckDevice(x, "GatherRows input");
  CheckDevice(rows, "GatherRows rows");
  CheckF32(out, "GatherRows output");
  const int64_t cols = x.dim(-1);
  OCTET_CHECK(rows.dtype() == DType::kI32 && out.numel() == rows.numel() * cols)
      << "GatherRows shapes " << x.DebugString() << " " << rows.DebugString() << " " << out.DebugString();
  cudaError_t err;
  if (x.dtype() == DType::kBF16) {
    err =
        cuda::GatherRows(x.data_as<const __nv_bfloat16>(), I32(rows), F32Mut(out), rows.numel(), cols, state_->stream);
  } else {
    CheckF32(x, "GatherRows input");
    err = cuda::GatherRows(F32(x), I32(rows), F32Mut(out), rows.numel(), cols, state_->stream);
  }
  Check(err, "GatherRows");
}

void CudaBackend::SplitQueryGate(const Tensor& qg, Tensor& q, Tensor& gate) {
  const OpScope scope(*state_, "SplitQueryGate");
  CheckF32(qg, "SplitQueryGate input");
  const int64_t d = q.dim(-1);
  OCTET_CHECK(qg.numel() == 2 * q.numel() && q.numel() == gate.numel())
      << "SplitQueryGate shapes " << qg.DebugString() << " " << q.DebugString();
  Check(cuda::SplitQueryGate(F32(qg), F32Mut(q), F32Mut(gate), q.numel() / d, d, state_->stream), "SplitQueryGate");
}

void CudaBackend::SigmoidGate(const Tensor& x, const Tensor& gate, Tensor& out) {
  const OpScope scope(*state_, "SigmoidGate");
  CheckF32(x, "SigmoidGate input");
  OCTET_CHECK(x.numel() == gate.numel() && x.numel() == out.numel()) << "SigmoidGate shapes";
  Check(cuda::SigmoidGate(F32(x), F32(gate), F32Mut(out), x.numel(), state_->stream), "SigmoidGate");
}

void CudaBackend::CausalConv1dSilu(const Tensor& x, const Tensor& w, const AttentionBatch& batch, Tensor& conv_state,
                                   Tensor& out) {
  const OpScope scope(*state_, "CausalConv1dSilu");
  CheckF32(x, "CausalConv1dSilu input");
  CheckF32(conv_state, "CausalConv1dSilu state");
  const int64_t channels = x.dim(-1);
  OCTET_CHECK(batch.state_slots.defined()) << "CausalConv1dSilu needs the batch's state slots";
  OCTET_CHECK(w.dim(0) == channels && conv_state.dim(1) == channels && conv_state.dim(2) == w.dim(1) - 1)
      << "CausalConv1dSilu shapes " << x.DebugString() << " " << w.DebugString() << " " << conv_state.DebugString();
  Check(cuda::CausalConv1dSilu(F32(x), F32(w), I32(batch.query_start), I32(batch.context_lens), I32(batch.state_slots),
                               batch.num_seqs, x.numel() / channels, channels, w.dim(1), F32Mut(conv_state),
                               F32Mut(out), state_->stream),
        "CausalConv1dSilu");
}

void CudaBackend::GdnGates(const Tensor& a, const Tensor& b, const Tensor& a_log, const Tensor& dt_bias, Tensor& g,
                           Tensor& beta) {
  const OpScope scope(*state_, "GdnGates");
  CheckF32(a, "GdnGates input");
  const int64_t heads = a_log.numel();
  Check(cuda::GdnGates(F32(a), F32(b), F32(a_log), F32(dt_bias), a.numel() / heads, heads, F32Mut(g), F32Mut(beta),
                       state_->stream),
        "GdnGates");
}

void CudaBackend::GatedDeltaRule(const Tensor& qkv, const Tensor& g, const Tensor& beta, const AttentionBatch& batch,
                                 int32_t k_heads, int32_t k_dim, Tensor& state, Tensor& out) {
  const OpScope scope(*state_, "GatedDeltaRule");
  CheckF32(qkv, "GatedDeltaRule input");
  CheckF32(state, "GatedDeltaRule state");
  const int64_t v_heads = out.dim(1), v_dim = out.dim(2);
  OCTET_CHECK(batch.state_slots.defined()) << "GatedDeltaRule needs the batch's state slots";
  OCTET_CHECK(qkv.dim(-1) == 2 * k_heads * k_dim + v_heads * v_dim && state.dim(1) == v_heads &&
              state.dim(2) == k_dim && state.dim(3) == v_dim && v_heads % k_heads == 0)
      << "GatedDeltaRule shapes " << qkv.DebugString() << " " << state.DebugString() << " " << out.DebugString();
  Check(cuda::GatedDeltaRule(F32(qkv), F32(g), F32(beta), I32(batch.query_start), I32(batch.context_lens),
                             I32(batch.state_slots), batch.num_seqs, qkv.dim(0), batch.max_query_len, k_heads, v_heads,
                             k_dim, v_dim, F32Mut(state), F32Mut(out), state_->stream),
        "GatedDeltaRule");
}

void CudaBackend::RmsNormGated(const Tensor& x, const Tensor& z, const Tensor& w, float eps, Tensor& out) {
  const OpScope scope(*state_, "RmsNormGated");
  CheckF32(x, "RmsNormGated input");
  const int64_t cols = x.dim(-1);
  OCTET_CHECK(z.numel() == x.numel() && w.numel() == cols && out.numel() == x.numel()) << "RmsNormGated shapes";
  Check(cuda::RmsNormGated(F32(x), F32(z), F32(w), F32Mut(out), x.numel() / cols, cols, eps, state_->stream),
        "RmsNormGated");
}

}  // namespace octet
