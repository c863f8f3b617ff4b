// Model: a causal LM forward over a flattened batch of sequences, written once against the Backend op interface.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/runtime/backend.h"
#include "worker/runtime/tensor.h"

namespace octet {

// A sequence's memory on the device: the paged KV cache of the full-attention layers, and for hybrid models the
// recurrent state of the linear-attention (Gated DeltaNet) layers, one slot per running sequence.
struct KvCache {
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  DType dtype = DType::kF32;    // of the cached values
  std::vector<KvLayer> layers;  // one per attention layer
  int32_t num_state_slots = 0;
  std::vector<Tensor> conv_state;       // one per linear-attention layer: [slots, conv_channels, conv_kernel - 1]
  std::vector<Tensor> recurrent_state;  // one per linear-attention layer: [slots, v_heads, k_dim, v_dim], fp32
};

// What a model needs to size its cache.
struct KvCacheSpec {
  int32_t num_layers = 0;  // layers with a KV cache
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  // Hybrid models: layers with a recurrent state instead of KV, and its shape.
  int32_t num_recurrent_layers = 0;
  int32_t conv_channels = 0;
  int32_t conv_kernel = 0;
  int32_t v_heads = 0;
  int32_t k_dim = 0;
  int32_t v_dim = 0;

  // Bytes one token occupies across all layers (K and V, with the per-head scales of an FP8 cache).
  int64_t BytesPerToken(DType dtype) const {
    const int64_t scales = dtype == DType::kF8E4M3 ? 4 : 0;
    return 2LL * num_layers * num_kv_heads * (head_dim * static_cast<int64_t>(DTypeSize(dtype)) + scales);
  }
  // Bytes one sequence's recurrent state occupies across all layers (conv state in `dtype`, delta state fp32).
  int64_t BytesPerStateSlot(DType dtype) const {
    return int64_t{num_recurrent_layers} *
           (int64_t{conv_channels} * (conv_kernel - 1) * static_cast<int64_t>(DTypeSize(dtype)) +
            int64_t{v_heads} * k_dim * v_dim * 4);
  }
};

// One forward step's inputs, already on the device.
struct ForwardBatch {
  Tensor input_ids;  // i32 [T]
  Tensor positions;  // i32 [T]
  AttentionBatch attention;
  Tensor logit_rows;  // i32 [N]: rows of the batch whose next-token logits are wanted
};

class Model {
 public:
  virtual ~Model() = default;
  virtual KvCacheSpec kv_cache_spec() const = 0;
  virtual int32_t vocab_size() const = 0;
  // Runs the batch, writes K/V of its tokens into the cache, returns fp32 logits [N, vocab] on the device.
  virtual Tensor Forward(const ForwardBatch& batch, KvCache& cache) = 0;
};

}  // namespace octet
