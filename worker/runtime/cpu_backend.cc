#include "worker/runtime/cpu_backend.h"

#include <cstring>

#include "base/log.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gated_delta.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace octet {
namespace {

void CheckF32(const Tensor& t, const char* what) {
  OCTET_CHECK(t.dtype() == DType::kF32) << what << " must be fp32 on the CPU backend, got " << t.DebugString();
}

}  // namespace

void ConvertToFloat(DType dtype, const void* src, float* dst, int64_t n) {
  switch (dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToFloat(s[i]);
      return;
    }
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToFloat(s[i]);
      return;
    }
    default:
      OCTET_CHECK(false) << "cannot convert " << DTypeName(dtype) << " to fp32";
  }
}

Tensor CpuBackend::Empty(DType dtype, Shape shape) { return HostTensor(dtype, std::move(shape)); }

Tensor CpuBackend::Zeros(DType dtype, Shape shape) {
  Tensor t = HostTensor(dtype, std::move(shape));
  std::memset(t.data(), 0, t.nbytes());
  return t;
}

Tensor CpuBackend::Upload(DType host_dtype, const void* host_data, Shape shape) {
  if (host_dtype == DType::kI32 || host_dtype == DType::kI64 || host_dtype == DType::kU8) {
    Tensor t = HostTensor(host_dtype, std::move(shape));
    if (t.nbytes() > 0) std::memcpy(t.data(), host_data, t.nbytes());
    return t;
  }
  Tensor t = HostTensor(DType::kF32, std::move(shape));
  ConvertToFloat(host_dtype, host_data, t.data_as<float>(), t.numel());
  return t;
}

LinearWeight CpuBackend::UploadLinear(DType host_dtype, const void* host_data, Shape shape) {
  OCTET_CHECK(shape.size() == 2) << "a linear weight is 2-D, got " << ShapeToString(shape);
  return LinearWeight{Upload(host_dtype, host_data, std::move(shape))};
}

void CpuBackend::Download(const Tensor& src, void* host_dst) {
  if (src.nbytes() > 0) std::memcpy(host_dst, src.data(), src.nbytes());
}

void CpuBackend::Embedding(const Tensor& table, const Tensor& ids, Tensor& out) { GatherRows(table, ids, out); }

void CpuBackend::RmsNorm(const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out) {
  CheckF32(x, "RmsNorm input");
  const int64_t cols = x.dim(-1);
  OCTET_CHECK(w.numel() == cols && out.numel() == x.numel()) << "RmsNorm shapes " << x.DebugString() << " "
                                                               << w.DebugString() << " " << out.DebugString();
  cpu::RmsNorm(x.data_as<float>(), w.data_as<float>(), out.data_as<float>(), x.numel() / cols, cols, eps, offset);
}

void CpuBackend::Linear(const Tensor& x, const LinearWeight& w, Tensor& out) {
  CheckF32(x, "Linear input");
  const int64_t in = x.dim(-1);
  const int64_t tokens = x.numel() / in;
  const int64_t out_features = w.weight.dim(0);
  OCTET_CHECK(w.weight.dim(1) == in && out.numel() == tokens * out_features)
      << "Linear shapes " << x.DebugString() << " " << w.weight.DebugString() << " " << out.DebugString();
  cpu::Linear(x.data_as<float>(), w.weight.data_as<float>(), out.data_as<float>(), tokens, in, out_features);
}

void CpuBackend::Rope(Tensor& q, Tensor& k, const Tensor& positions, int32_t rotary_dim, float theta) {
  const int64_t tokens = q.dim(0);
  OCTET_CHECK(q.ndim() == 3 && k.ndim() == 3 && k.dim(0) == tokens && positions.numel() == tokens &&
              rotary_dim <= q.dim(2) && rotary_dim % 2 == 0)
      << "Rope shapes " << q.DebugString() << " " << k.DebugString() << " rotary_dim " << rotary_dim;
  const int32_t* pos = positions.data_as<int32_t>();
  cpu::Rope(q.data_as<float>(), pos, tokens, q.dim(1), q.dim(2), rotary_dim, theta);
  cpu::Rope(k.data_as<float>(), pos, tokens, k.dim(1), k.dim(2), rotary_dim, theta);
}

void CpuBackend::StoreKv(const Tensor& k, const Tensor& v, const AttentionBatch& batch, Tensor& k_cache,
                         Tensor& v_cache) {
  CheckF32(k_cache, "KV cache");
  cpu::StoreKv(k.data_as<float>(), v.data_as<float>(), batch.slot_mapping.data_as<int32_t>(),
               k_cache.data_as<float>(), v_cache.data_as<float>(), k.dim(0), k.dim(1), k.dim(2));
}

void CpuBackend::PagedAttention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                                const AttentionBatch& batch, float scale, Tensor& out) {
  cpu::PagedAttention(q.data_as<float>(), k_cache.data_as<float>(), v_cache.data_as<float>(),
                      batch.query_start.data_as<int32_t>(), batch.context_lens.data_as<int32_t>(),
                      batch.block_tables.data_as<int32_t>(), batch.block_tables.dim(1), batch.num_seqs, q.dim(1),
                      k_cache.dim(2), q.dim(2), batch.block_size, scale, out.data_as<float>());
}

void CpuBackend::SiluMul(const Tensor& gate_up, Tensor& out) {
  const int64_t inter = out.dim(-1);
  OCTET_CHECK(gate_up.dim(-1) == 2 * inter) << "SiluMul shapes " << gate_up.DebugString() << " "
                                            << out.DebugString();
  cpu::SiluMul(gate_up.data_as<float>(), out.data_as<float>(), out.numel() / inter, inter);
}

void CpuBackend::Add(const Tensor& a, const Tensor& b, Tensor& out) {
  OCTET_CHECK(a.numel() == b.numel() && a.numel() == out.numel()) << "Add shapes";
  cpu::Add(a.data_as<float>(), b.data_as<float>(), out.data_as<float>(), a.numel());
}

void CpuBackend::GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) {
  CheckF32(x, "GatherRows input");
  const int64_t cols = x.dim(-1);
  cpu::GatherRows(x.data_as<float>(), rows.data_as<int32_t>(), out.data_as<float>(), rows.numel(), cols);
}

void CpuBackend::SplitQueryGate(const Tensor& qg, Tensor& q, Tensor& gate) {
  const int64_t d = q.dim(-1);
  OCTET_CHECK(qg.numel() == 2 * q.numel() && q.numel() == gate.numel()) << "SplitQueryGate shapes "
                                                                          << qg.DebugString() << " " << q.DebugString();
  cpu::SplitQueryGate(qg.data_as<float>(), q.data_as<float>(), gate.data_as<float>(), 1, q.numel() / d, d);
}

void CpuBackend::SigmoidGate(const Tensor& x, const Tensor& gate, Tensor& out) {
  OCTET_CHECK(x.numel() == gate.numel() && x.numel() == out.numel()) << "SigmoidGate shapes";
  cpu::SigmoidGate(x.data_as<float>(), gate.data_as<float>(), out.data_as<float>(), x.numel());
}

void CpuBackend::CausalConv1dSilu(const Tensor& x, const Tensor& w, const AttentionBatch& batch, Tensor& conv_state,
                                  Tensor& out) {
  const int64_t channels = x.dim(-1);
  OCTET_CHECK(batch.state_slots.defined()) << "CausalConv1dSilu needs the batch's state slots";
  OCTET_CHECK(w.dim(0) == channels && conv_state.dim(1) == channels && conv_state.dim(2) == w.dim(1) - 1)
      << "CausalConv1dSilu shapes " << x.DebugString() << " " << w.DebugString() << " " << conv_state.DebugString();
  cpu::CausalConv1dSilu(x.data_as<float>(), w.data_as<float>(), batch.query_start.data_as<int32_t>(),
                        batch.context_lens.data_as<int32_t>(), batch.state_slots.data_as<int32_t>(), batch.num_seqs,
                        channels, w.dim(1), conv_state.data_as<float>(), out.data_as<float>());
}

void CpuBackend::GdnGates(const Tensor& a, const Tensor& b, const Tensor& a_log, const Tensor& dt_bias, Tensor& g,
                          Tensor& beta) {
  const int64_t heads = a_log.numel();
  cpu::GdnGates(a.data_as<float>(), b.data_as<float>(), a_log.data_as<float>(), dt_bias.data_as<float>(),
                a.numel() / heads, heads, g.data_as<float>(), beta.data_as<float>());
}

void CpuBackend::GatedDeltaRule(const Tensor& qkv, const Tensor& g, const Tensor& beta, const AttentionBatch& batch,
                                int32_t k_heads, int32_t k_dim, Tensor& state, Tensor& out) {
  const int64_t v_heads = out.dim(1), v_dim = out.dim(2);
  OCTET_CHECK(batch.state_slots.defined()) << "GatedDeltaRule needs the batch's state slots";
  OCTET_CHECK(qkv.dim(-1) == 2 * k_heads * k_dim + v_heads * v_dim && state.dim(1) == v_heads &&
              state.dim(2) == k_dim && state.dim(3) == v_dim && v_heads % k_heads == 0)
      << "GatedDeltaRule shapes " << qkv.DebugString() << " " << state.DebugString() << " " << out.DebugString();
  cpu::GatedDeltaRule(qkv.data_as<float>(), g.data_as<float>(), beta.data_as<float>(),
                      batch.query_start.data_as<int32_t>(), batch.context_lens.data_as<int32_t>(),
                      batch.state_slots.data_as<int32_t>(), batch.num_seqs, k_heads, v_heads, k_dim, v_dim,
                      state.data_as<float>(), out.data_as<float>());
}

void CpuBackend::RmsNormGated(const Tensor& x, const Tensor& z, const Tensor& w, float eps, Tensor& out) {
  const int64_t cols = x.dim(-1);
  OCTET_CHECK(z.numel() == x.numel() && w.numel() == cols && out.numel() == x.numel()) << "RmsNormGated shapes";
  cpu::RmsNormGated(x.data_as<float>(), z.data_as<float>(), w.data_as<float>(), out.data_as<float>(),
                    x.numel() / cols, cols, eps);
}

}  // namespace octet
