// CpuBackend: the Backend on the host, ops from kernels/cpu. fp32 activations and math; linear weights as fp32
// copies or FP8 E4M3 with block scales (kernels/cpu/fp8.h); KV caches of fp32, bf16 or FP8 E4M3 values.
// Empty/Zeros allocate any dtype.
#pragma once

#include "worker/runtime/backend.h"

namespace octet {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }
  DType compute_dtype() const override { return DType::kF32; }

  Tensor Empty(DType dtype, Shape shape) override;
  Tensor Zeros(DType dtype, Shape shape) override;
  Tensor Upload(DType host_dtype, const void* host_data, Shape shape) override;
  LinearWeight UploadLinear(DType host_dtype, const void* host_data, Shape shape) override;
  LinearWeight QuantizeLinearFp8(DType host_dtype, const void* host_data, Shape shape) override;
  LinearWeight UploadLinearFp8(const void* fp8_data, const float* scales, Shape shape) override;
  void Download(const Tensor& src, void* host_dst) override;
  void Synchronize() override {}
  void CopyFromHost(const void* host, Tensor& dst) override;

  void Embedding(const Tensor& table, const Tensor& ids, Tensor& out) override;
  void RmsNorm(const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out) override;
  void Linear(const Tensor& x, const LinearWeight& w, Tensor& out) override;
  void Rope(Tensor& q, Tensor& k, const Tensor& positions, int32_t rotary_dim, float theta) override;
  void StoreKv(const Tensor& k, const Tensor& v, const AttentionBatch& batch, KvLayer& cache) override;
  void PagedAttention(const Tensor& q, const KvLayer& cache, const AttentionBatch& batch, float scale,
                      Tensor& out) override;
  void SiluMul(const Tensor& gate_up, Tensor& out) override;
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
};

// Converts n host elements of a floating dtype (f32, f16, bf16) to fp32.
void ConvertToFloat(DType dtype, const void* src, float* dst, int64_t n);

}  // namespace octet
