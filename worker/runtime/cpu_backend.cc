#include "worker/runtime/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/fp8.h"
#include "kernels/cpu/gated_delta.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "worker/runtime/backend_checks.h"

namespace octet {
namespace {

static_assert(cpu::kFp8Block == kFp8BlockSize, "the CPU reference and the backend interface disagree on FP8 blocks");

void CheckF32(const Tensor& t, const char* what) {
  OCTET_CHECK(t.dtype() == DType::kF32) << what << " must be fp32 on the CPU backend, got " << t.DebugString();
}

[[noreturn]] void UnsupportedKvDType(const Tensor& cache) {
  OCTET_CHECK(false) << "the CPU backend's KV cache holds fp32, bf16 or fp8_e4m3 values, got " << cache.DebugString();
  std::abort();  // not reached: the failed check aborts
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

LinearWeight CpuBackend::QuantizeLinearFp8(DType host_dtype, const void* host_data, Shape shape) {
  OCTET_CHECK(shape.size() == 2) << "a linear weight is 2-D, got " << ShapeToString(shape);
  std::vector<float> w(static_cast<size_t>(ShapeNumel(shape)));
  ConvertToFloat(host_dtype, host_data, w.data(), ShapeNumel(shape));  // exact for bf16, f16 and f32
  LinearWeight out{HostTensor(DType::kF8E4M3, shape), HostTensor(DType::kF32, Fp8ScaleShape(shape))};
  cpu::QuantizeWeightFp8(w.data(), shape[0], shape[1], out.weight.data_as<uint8_t>(), out.scale.data_as<float>());
  return out;
}

LinearWeight CpuBackend::UploadLinearFp8(const void* fp8_data, const float* scales, Shape shape) {
  OCTET_CHECK(shape.size() == 2) << "a linear weight is 2-D, got " << ShapeToString(shape);
  LinearWeight out{HostTensor(DType::kF8E4M3, shape), HostTensor(DType::kF32, Fp8ScaleShape(shape))};
  if (out.weight.nbytes() > 0) std::memcpy(out.weight.data(), fp8_data, out.weight.nbytes());
  if (out.scale.nbytes() > 0) std::memcpy(out.scale.data(), scales, out.scale.nbytes());
  return out;
}

void CpuBackend::CopyFromHost(const void* host, Tensor& dst) {
  if (dst.nbytes() > 0) std::memcpy(dst.data(), host, dst.nbytes());
}

void CpuBackend::Download(const Tensor& src, void* host_dst) {
  if (src.nbytes() > 0) std::memcpy(host_dst, src.data(), src.nbytes());
}

void CpuBackend::Embedding(const Tensor& table, const Tensor& ids, Tensor& out) { GatherRows(table, ids, out); }

void CpuBackend::RmsNorm(const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out) {
  CheckF32(x, "RmsNorm input");
  const int64_t cols = x.dim(-1);
  OCTET_CHECK(w.numel() == cols && out.numel() == x.numel())
      << "RmsNorm shapes " << x.DebugString() << " " << w.DebugString() << " " << out.DebugString();
  cpu::RmsNorm(x.data_as<float>(), w.data_as<float>(), out.data_as<float>(), x.numel() / cols, cols, eps, offset);
}

void CpuBackend::Linear(const Tensor& x, const LinearWeight& w, Tensor& out) {
  CheckF32(x, "Linear input");
  CheckF32(out, "Linear output");
  const int64_t in = x.dim(-1);
  const int64_t tokens = x.numel() / in;
  const int64_t out_features = w.weight.dim(0);
  OCTET_CHECK(w.weight.ndim() == 2 && w.weight.dim(1) == in && out.numel() == tokens * out_features)
      << "Linear shapes " << x.DebugString() << " " << w.weight.DebugString() << " " << out.DebugString();
  if (!w.fp8()) {
    CheckF32(w.weight, "Linear weight");
    cpu::Linear(x.data_as<float>(), w.weight.data_as<float>(), out.data_as<float>(), tokens, in, out_features);
    return;
  }
  const Shape scale_shape = Fp8ScaleShape(w.weight.shape());
  OCTET_CHECK(w.scale.defined() && w.scale.dtype() == DType::kF32 && w.scale.shape() == scale_shape)
      << "an fp8_e4m3 weight " << w.weight.DebugString() << " needs fp32 block scales " << ShapeToString(scale_shape)
      << ", got " << (w.scale.defined() ? w.scale.DebugString() : std::string("none"));
  // The block-scaled GEMM's input: x per token in groups of 128 (kernels/cpu/fp8.h).
  std::vector<uint8_t> xq(static_cast<size_t>(tokens * in));
  std::vector<float> xs(static_cast<size_t>(tokens * cpu::Fp8NumBlocks(in)));
  cpu::QuantizeActivationFp8(x.data_as<float>(), tokens, in, xq.data(), xs.data());
  cpu::LinearFp8(xq.data(), xs.data(), w.weight.data_as<uint8_t>(), w.scale.data_as<float>(), out.data_as<float>(),
                 tokens, in, out_features);
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

void CpuBackend::StoreKv(const Tensor& k, const Tensor& v, const AttentionBatch& batch, KvLayer& cache) {
  CheckF32(k, "StoreKv keys");
  CheckF32(v, "StoreKv values");
  OCTET_CHECK(k.ndim() == 3 && v.shape() == k.shape() && batch.slot_mapping.numel() == k.dim(0))
      << "StoreKv shapes " << k.DebugString() << " " << v.DebugString() << " slots "
      << batch.slot_mapping.DebugString();
  const int64_t tokens = k.dim(0), kv_heads = k.dim(1), head_dim = k.dim(2);
  CheckKvLayer(cache, kv_heads, head_dim);
  const int32_t* slots = batch.slot_mapping.data_as<int32_t>();
  const int64_t num_slots = cache.k.dim(0) * cache.k.dim(1);
  for (int64_t t = 0; t < tokens; ++t) {
    OCTET_CHECK(slots[t] < num_slots) << "token " << t << " maps to slot " << slots[t] << " of a cache of "
                                      << num_slots;
  }
  const float* kp = k.data_as<float>();
  const float* vp = v.data_as<float>();
  switch (cache.k.dtype()) {
    case DType::kF32:
      cpu::StoreKv(kp, vp, slots, cache.k.data_as<float>(), cache.v.data_as<float>(), tokens, kv_heads, head_dim);
      return;
    case DType::kBF16:
      cpu::StoreKvBf16(kp, vp, slots, cache.k.data_as<uint16_t>(), cache.v.data_as<uint16_t>(), tokens, kv_heads,
                       head_dim);
      return;
    case DType::kF8E4M3:
      cpu::StoreKvFp8(kp, vp, slots, cache.k.data_as<uint8_t>(), cache.v.data_as<uint8_t>(),
                      cache.k_scale.data_as<float>(), cache.v_scale.data_as<float>(), tokens, kv_heads, head_dim);
      return;
    default:
      UnsupportedKvDType(cache.k);
  }
}

void CpuBackend::PagedAttention(const Tensor& q, const KvLayer& cache, const AttentionBatch& batch, float scale,
                                Tensor& out) {
  CheckF32(q, "PagedAttention queries");
  CheckF32(out, "PagedAttention output");
  OCTET_CHECK(q.ndim() == 3 && out.numel() == q.numel())
      << "PagedAttention shapes " << q.DebugString() << " " << out.DebugString();
  const int64_t q_heads = q.dim(1), head_dim = q.dim(2);
  OCTET_CHECK(cache.k.defined() && cache.k.ndim() == 4) << "PagedAttention cache " << cache.k.DebugString();
  const int64_t kv_heads = cache.k.dim(2);
  OCTET_CHECK(q_heads % kv_heads == 0) << q_heads << " query heads over " << kv_heads << " kv heads";
  CheckKvLayer(cache, kv_heads, head_dim);
  const float* qp = q.data_as<float>();
  const int32_t* query_start = batch.query_start.data_as<int32_t>();
  const int32_t* context_lens = batch.context_lens.data_as<int32_t>();
  const int32_t* tables = batch.block_tables.data_as<int32_t>();
  const int64_t max_blocks = batch.block_tables.dim(1);
  switch (cache.k.dtype()) {
    case DType::kF32:
      cpu::PagedAttention(qp, cache.k.data_as<float>(), cache.v.data_as<float>(), query_start, context_lens, tables,
                          max_blocks, batch.num_seqs, q_heads, kv_heads, head_dim, batch.block_size, scale,
                          out.data_as<float>());
      return;
    case DType::kBF16:
      cpu::PagedAttentionBf16(qp, cache.k.data_as<uint16_t>(), cache.v.data_as<uint16_t>(), query_start, context_lens,
                              tables, max_blocks, batch.num_seqs, q_heads, kv_heads, head_dim, batch.block_size, scale,
                              out.data_as<float>());
      return;
    case DType::kF8E4M3:
      cpu::PagedAttentionFp8(qp, cache.k.data_as<uint8_t>(), cache.v.data_as<uint8_t>(), cache.k_scale.data_as<float>(),
                             cache.v_scale.data_as<float>(), query_start, context_lens, tables, max_blocks,
                             batch.num_seqs, q_heads, kv_heads, head_dim, batch.block_size, scale,
                             out.data_as<float>());
      return;
    default:
      UnsupportedKvDType(cache.k);
  }
}

void CpuBackend::SiluMul(const Tensor& gate_up, Tensor& out) {
  const int64_t inter = out.dim(-1);
  OCTET_CHECK(gate_up.dim(-1) == 2 * inter) << "SiluMul shapes " << gate_up.DebugString() << " " << out.DebugString();
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
  OCTET_CHECK(qg.numel() == 2 * q.numel() && q.numel() == gate.numel())
      << "SplitQueryGate shapes " << qg.DebugString() << " " << q.DebugString();
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
  cpu::RmsNormGated(x.data_as<float>(), z.data_as<float>(), w.data_as<float>(), out.data_as<float>(), x.numel() / cols,
                    cols, eps);
}

}  // namespace octet
