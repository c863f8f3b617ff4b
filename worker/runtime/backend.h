// Backend: the op interface the model forward is written against, once, for every device.
// The CPU backend runs kernels/cpu (the reference); the CUDA backend runs kernels/cuda and must match it.
// Shapes in comments: T = tokens in the batch (all sequences flattened), H = heads, D = head dim.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "worker/runtime/dtype.h"
#include "worker/runtime/tensor.h"

namespace octet {

// Where each sequence's tokens sit in a flattened batch and where its keys and values live in the paged cache.
struct AttentionBatch {
  int32_t num_seqs = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  int32_t block_size = 0;
  Tensor query_start;   // i32 [num_seqs + 1]: sequence b's queries are rows query_start[b] .. query_start[b+1]
  Tensor context_lens;  // i32 [num_seqs]: tokens in the cache for b after this step (cached + new)
  Tensor block_tables;  // i32 [num_seqs, max_blocks_per_seq]: physical block ids (rest is padding)
  Tensor slot_mapping;  // i32 [T]: cache slot (block * block_size + offset) each new token's K/V goes to
  Tensor state_slots;   // i32 [num_seqs]: recurrent-state slot of each sequence (hybrid models only)
};

// FP8 block size of weights (128x128) and of activation groups (1x128), as in Qwen's FP8 checkpoints.
inline constexpr int64_t kFp8BlockSize = 128;

// A linear layer's weight [out_features, in_features], as the backend stores it: in the compute dtype, or FP8
// E4M3 with one fp32 scale per 128x128 block (multiplicative: w = fp8 * scale, Qwen's `weight_scale_inv`). An FP8
// linear layer quantizes its input per token in groups of 128 (scale = amax / 448) before the block-scaled GEMM.
struct LinearWeight {
  Tensor weight;  // [out, in]
  Tensor scale;   // fp32 [ceil(out / 128), ceil(in / 128)]; only when weight is kF8E4M3
  bool fp8() const { return weight.defined() && weight.dtype() == DType::kF8E4M3; }
};

// One attention layer's paged KV cache. Values are in the cache dtype (the compute dtype, bf16 or FP8 E4M3);
// with FP8, each token's K and V carry one fp32 scale per KV head, written with them (scale = amax / 448).
struct KvLayer {
  Tensor k;  // [num_blocks, block_size, kv_heads, head_dim]
  Tensor v;
  Tensor k_scale;  // fp32 [num_blocks, block_size, kv_heads]; only for FP8
  Tensor v_scale;
};

// A device's memory as its driver reports it (zeros for the host).
struct DeviceMemory {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};

// An activation's FP8 E4M3 copy in per-token groups of 128 (kernels/cpu/fp8.h), made by the op that produced the
// activation, for the FP8 linear layers that read it: they then skip their own quantization of it.
struct Fp8Activation {
  Tensor q;      // E4M3 [T, C]
  Tensor scale;  // fp32 [T, ceil(C / 128)]
  bool defined() const { return q.defined(); }
};

// One row's sampling for Backend::SampleTokens: the rules of worker/engine/sampler.h without log-probabilities.
struct TokenSampling {
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;  // the draw's key, one per sampled token
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;
  virtual Device device() const = 0;
  // Element type of activations and of the math.
  virtual DType compute_dtype() const = 0;

  // Memory.
  virtual Tensor Empty(DType dtype, Shape shape) = 0;
  virtual Tensor Zeros(DType dtype, Shape shape) = 0;
  // Copies host data of any floating dtype into a new device tensor of the backend's compute dtype
  // (or of `dtype` for integer data: kI32 stays kI32).
  virtual Tensor Upload(DType host_dtype, const void* host_data, Shape shape) = 0;
  // A linear weight kept in the compute dtype.
  virtual LinearWeight UploadLinear(DType host_dtype, const void* host_data, Shape shape) = 0;
  // A linear weight quantized at load to FP8 E4M3 with 128x128 block scales (scale = block amax / 448).
  virtual LinearWeight QuantizeLinearFp8(DType host_dtype, const void* host_data, Shape shape) = 0;
  // An already quantized FP8 weight [out, in] with its fp32 block scales [ceil(out/128), ceil(in/128)].
  virtual LinearWeight UploadLinearFp8(const void* fp8_data, const float* scales, Shape shape) = 0;
  // Copies a device tensor to host memory laid out the same way.
  virtual void Download(const Tensor& src, void* host_dst) = 0;
  // Waits for all queued work.
  virtual void Synchronize() = 0;
  // Free and total memory of the device (zeros on the CPU).
  virtual DeviceMemory MemoryInfo() { return {}; }
  // Copies host bytes into an existing tensor of the same size, as they are (no dtype conversion).
  virtual void CopyFromHost(const void* host, Tensor& dst) = 0;

  // Graphs (CUDA graphs): the work queued between BeginCapture and EndCapture is recorded once and replayed by
  // ReplayGraph at a fraction of its launch cost, on the same memory. Inside a capture only device work may be
  // queued (no Upload, Download or Synchronize), and every tensor made inside must be gone by EndCapture. A backend
  // without graphs returns false from BeginCapture (the work then runs eagerly and nothing is recorded).
  virtual bool BeginCapture() { return false; }
  // Sampling on the device (kernels/cuda/sampling.h), so only token ids come back: logits [rows, vocab] fp32, one
  // TokenSampling per row. Backends without it say so with CanSampleTokens; the caller then downloads the logits.
  virtual bool CanSampleTokens() const { return false; }
  virtual std::vector<int32_t> SampleTokens(const Tensor& logits, const std::vector<TokenSampling>& rows) { return {}; }
  virtual int32_t EndCapture() { return -1; }  // the graph's id
  virtual void ReplayGraph(int32_t graph) {}

  // out[t, :] = table[ids[t], :]                         ids i32 [T], table [V, hidden], out [T, hidden]
  virtual void Embedding(const Tensor& table, const Tensor& ids, Tensor& out) = 0;
  // Row-wise RMSNorm over the last dim: out = x / rms(x) * (offset ? 1 + w : w). x, out [R, C]; w [C].
  virtual void RmsNorm(const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out) = 0;
  // out = x @ w.T                                        x [T, in], w [out, in], out [T, out]
  // FP8 weights: x is quantized per token in groups of 128 first (the block-scaled GEMM's input).
  virtual void Linear(const Tensor& x, const LinearWeight& w, Tensor& out) = 0;
  // Rotary embedding (rotate-half convention) on the first rotary_dim dims of every head, in place.
  // q [T, Hq, D], k [T, Hk, D], positions i32 [T].
  virtual void Rope(Tensor& q, Tensor& k, const Tensor& positions, int32_t rotary_dim, float theta) = 0;
  // Writes this step's keys and values into the paged cache at batch.slot_mapping (quantizing for an FP8 cache).
  // k, v [T, Hk, D].
  virtual void StoreKv(const Tensor& k, const Tensor& v, const AttentionBatch& batch, KvLayer& cache) = 0;
  // Causal attention of each sequence's new queries over its cached keys/values (prefill chunks and decodes
  // mixed). q [T, Hq, D], out [T, Hq, D]; Hq a multiple of Hk.
  virtual void PagedAttention(const Tensor& q, const KvLayer& cache, const AttentionBatch& batch, float scale,
                              Tensor& out) = 0;
  // out = silu(gate_up[:, :I]) * gate_up[:, I:]          gate_up [T, 2I], out [T, I]
  virtual void SiluMul(const Tensor& gate_up, Tensor& out) = 0;

  // Fused forms for the inputs of FP8 linear layers. A backend may fill `out_fp8` with the FP8 copy of `out` (same
  // codes as the linear layer's own quantization would give) or leave it undefined; LinearFp8Input then uses it.
  // residual += x; out = RmsNorm(residual, w) (offset: 1 + w). residual, x, out [R, C], out distinct from both.
  virtual void AddRmsNorm(Tensor& residual, const Tensor& x, const Tensor& w, float eps, bool offset, Tensor& out,
                          Fp8Activation* out_fp8) {
    Add(residual, x, residual);
    RmsNorm(residual, w, eps, offset, out);
    if (out_fp8) *out_fp8 = {};
  }
  virtual void SiluMulFp8(const Tensor& gate_up, Tensor& out, Fp8Activation* out_fp8) {
    SiluMul(gate_up, out);
    if (out_fp8) *out_fp8 = {};
  }
  // Linear(x, w, out), taking x's FP8 copy (when defined, and w is FP8) instead of quantizing x again.
  virtual void LinearFp8Input(const Tensor& x, const Fp8Activation& x_fp8, const LinearWeight& w, Tensor& out) {
    Linear(x, w, out);
  }
  // out = a + b (same shapes; out may alias a).
  virtual void Add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
  // out[i, :] = x[rows[i], :]                            rows i32 [N], out [N, C]
  virtual void GatherRows(const Tensor& x, const Tensor& rows, Tensor& out) = 0;

  // Gated attention (Qwen3.5): split the per-head [q | gate] projection, and out = x * sigmoid(gate).
  // qg [T, H, 2D] -> q, gate [T, H, D].
  virtual void SplitQueryGate(const Tensor& qg, Tensor& q, Tensor& gate) = 0;
  virtual void SigmoidGate(const Tensor& x, const Tensor& gate, Tensor& out) = 0;

  // Gated DeltaNet (Qwen3.5's linear attention). Sequences are laid out as in `batch`; each owns the recurrent
  // state slot batch.state_slots[b], reset when the sequence has no earlier tokens.
  // Depthwise causal conv + SiLU: x, out [T, C]; w [C, K]; conv_state [slots, C, K - 1].
  virtual void CausalConv1dSilu(const Tensor& x, const Tensor& w, const AttentionBatch& batch, Tensor& conv_state,
                                Tensor& out) = 0;
  // beta = sigmoid(b); g = -exp(a_log) * softplus(a + dt_bias).   a, b, g, beta [T, Hv]; a_log, dt_bias [Hv].
  virtual void GdnGates(const Tensor& a, const Tensor& b, const Tensor& a_log, const Tensor& dt_bias, Tensor& g,
                        Tensor& beta) = 0;
  // The delta rule over an fp32 state, q/k L2-normalised inside. qkv [T, 2 * Hk * Dk + Hv * Dv];
  // g, beta [T, Hv]; state [slots, Hv, Dk, Dv]; out [T, Hv, Dv].
  virtual void GatedDeltaRule(const Tensor& qkv, const Tensor& g, const Tensor& beta, const AttentionBatch& batch,
                              int32_t k_heads, int32_t k_dim, Tensor& state, Tensor& out) = 0;
  // out = w * rmsnorm(x) * silu(z), row-wise over the last dim.   x, z, out [R, C]; w [C].
  virtual void RmsNormGated(const Tensor& x, const Tensor& z, const Tensor& w, float eps, Tensor& out) = 0;
};

}  // namespace octet
