#include "worker/server/memory_plan.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace octet {

v1::MemoryReport MemoryPlan::ToProto() const {
  v1::MemoryReport r;
  r.set_weights_bytes(weights_bytes);
  r.set_kv_cache_bytes(kv_cache_bytes);
  r.set_state_bytes(state_bytes);
  r.set_workspace_bytes(workspace_bytes);
  r.set_device_total_bytes(device_total_bytes);
  r.set_kv_cache_tokens(kv_cache_tokens);
  r.set_kv_cache_tokens_fp8(kv_cache_tokens_fp8);
  r.set_kv_cache_tokens_bf16(kv_cache_tokens_bf16);
  return r;
}

std::string MemoryPlan::Summary() const {
  constexpr double kMiB = 1024.0 * 1024.0;
  return absl::StrFormat(
      "memory: weights %.1f MiB, KV cache %.1f MiB (%d tokens; the same bytes hold %d tokens with fp8 KV, %d with "
      "bf16 KV), state %.1f MiB, workspace %.1f MiB, device total %.1f MiB",
      weights_bytes / kMiB, kv_cache_bytes / kMiB, kv_cache_tokens, kv_cache_tokens_fp8, kv_cache_tokens_bf16,
      state_bytes / kMiB, workspace_bytes / kMiB, device_total_bytes / kMiB);
}

int64_t EstimateWorkspaceBytes(const ModelConfig& c, const SchedulerConfig& scheduler) {
  const int64_t tokens = scheduler.max_num_batched_tokens;
  const int64_t q_width = (c.attn_output_gate ? 3 : 2) * c.num_attention_heads * c.head_dim;  // q|gate, q, out
  const int64_t kv_width = 2 * c.num_key_value_heads * c.head_dim;
  const int64_t conv_channels =
      2 * c.linear_num_key_heads * c.linear_key_head_dim + c.linear_num_value_heads * c.linear_value_head_dim;
  const int64_t gdn_width = 2 * conv_channels + 2 * c.linear_num_value_heads * c.linear_value_head_dim;
  // Residual stream, normed input and block output; the MLP's gate_up and product; the larger mixer's tensors;
  // plus the FP8 copy of the widest GEMM input (1 byte per element).
  const int64_t per_token_floats =
      3 * c.hidden_size + 3 * c.intermediate_size + std::max(q_width + kv_width, gdn_width);
  const int64_t per_token = 4 * per_token_floats + c.intermediate_size;
  const int64_t logits = int64_t{scheduler.max_num_seqs} * c.vocab_size * 4 * 2;  // normed rows and logits
  constexpr int64_t kScratch = int64_t{256} << 20;  // cuBLASLt workspace, split-K partials, metadata
  return tokens * per_token + logits + kScratch;
}

}  // namespace octet
