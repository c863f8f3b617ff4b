// CudaBackend: the Backend on one NVIDIA GPU, ops from kernels/cuda, each tested against its kernels/cpu reference.
// fp32 activations and math (as the CPU backend, so the two agree to rounding); linear weights as FP8 E4M3 with
// 128x128 block scales, or kept in their checkpoint's bf16/fp32; KV caches of fp32, bf16 or FP8 E4M3 values.
//
// Everything runs in order on one stream. Memory comes from the device's stream-ordered pool (cudaMallocAsync), so
// the forward pass's many short-lived activations cost no cudaMalloc: a freed tensor's memory is reused by the next
// allocation on the stream. The only host waits are Download and Synchronize.
#pragma once

#include <memory>
#include <string>

#include "worker/runtime/backend.h"

namespace octet {

struct CudaBackendOptions {
  int device = 0;
  // FP8 linear layers of 16 or more tokens on cuBLASLt's block-scaled GEMM (else our GEMV, 8 tokens at a time). Off
  // only to measure what cuBLASLt's FP8 accumulation changes (tests, benchmarks).
  bool fp8_gemm_cublaslt = true;
  // Time every op on the GPU (a pair of events each) for ProfileReport; costs a little host time per op.
  bool profile_ops = false;
};

class CudaBackend final : public Backend {
 public:
  // Aborts with the CUDA error when the GPU cannot be used.
  explicit CudaBackend(const CudaBackendOptions& options = {});
  ~CudaBackend() override;

  std::string_view name() const override { return "cuda"; }
  Device device() const override { return Device::kCuda; }
  DType compute_dtype() const override { return DType::kF32; }
  DeviceMemory MemoryInfo() override;

  Tensor Empty(DType dtype, Shape shape) override;
  Tensor Zeros(DType dtype, Shape shape) override;
  Tensor Upload(DType host_dtype, const void* host_data, Shape shape) override;
  LinearWeight UploadLinear(DType host_dtype, const void* host_data, Shape shape) override;
  LinearWeight QuantizeLinearFp8(DType host_dtype, const void* host_data, Shape shape) override;
  LinearWeight UploadLinearFp8(const void* fp8_data, const float* scales, Shape shape) override;
  void Download(const Tensor& src, void* host_dst) override;
  void Synchronize() override;
  void CopyFromHost(const void* host, Tensor& dst) override;
  bool BeginCapture() override;
  bool CanSampleTokens() const override { return true; }
  std::vector<int32_t> SampleTokens(const Tensor& logits, const std::vector<TokenSampling>& rows) override;
  int32_t EndCapture() override;
  void ReplayGraph(int32_t graph) override;

  void Embedding(const Tensor& table, const Tensor& ids, Tensor& out) override;
  void RmsNorm(const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out) override;
  void Linear(const Tensor& x, const LinearWeight& w, Tensor& out) override;
  void Rope(Tensor& q, Tensor& k, const Tensor& positions, int32_t rotary_dim, float theta) override;
  void StoreKv(const Tensor& k, const Tensor& v, const AttentionBatch& batch, KvLayer& cache) override;
  void PagedAttention(const Tensor& q, const KvLayer& cache, const AttentionBatch& batch, float scale,
                      Tensor& out) override;
  void SiluMul(const Tensor& gate_up, Tensor& out) override;
  void AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out,
                  Fp8Activation* out_fp8) override;
  void SiluMulFp8(const Tensor& gate_up, Tensor& out, Fp8Activation* out_fp8) override;
  void LinearFp8Input(const Tensor& x, const Fp8Activation& x_fp8, const LinearWeight& w, Tensor& out) override;
  void Add(const Tensor& a, const Tensor& b, Tensor& out) override;
  void GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) override;
  void SplitQueryGate(const Tensor& qg, Tensor& q, Tensor& gate) override;
  void SigmoidGate(const Tensor& x, const Tensor& gate, Tensor& out) override;
  void CausalConv1dSilu(const Tensor& x, const Tensor& w, const AttentionBatch& batch, Tensor& conv_state,
                        Tensor& out) override;
  void GdnGates(const Tensor& a, const Tensor& b, const Tensor& a_log, const Tensor& dt_bias, Tensor& g,
                Tensor& beta) override;
  void GatedDeltaRule(const Tensor& qkv, const Tensor& g, const Tensor& beta, const AttentionBatch& batch,
                      int32_t k_heads, int32_t k_dim, Tensor& state, Tensor& out) override;
  void RmsNormGated(const Tensor& x, const Tensor& z, const Tensor& w, float eps, Tensor& out) override;

  // With options.profile_ops: GPU time per op since the last report, largest first, as a table (then reset).
  std::string ProfileReport();

  struct State;

 private:
  // x_fp8: x's FP8 copy when the producer made one, else null (then x is quantized here).
  void LinearFp8(const Tensor& x, const Fp8Activation* x_fp8, const LinearWeight& w, Tensor& out, int64_t tokens,
                 int64_t in, int64_t out_features);
  // out_fp8's tensors for an activation [rows, cols] (reused when they already have that shape).
  void PrepareFp8(Fp8Activation& out_fp8, int64_t rows, int64_t cols);
  std::unique_ptr<State> state_;
};

// Whether a CUDA device is present (false in a build without the CUDA backend).
bool CudaDeviceAvailable();

}  // namespace octet
