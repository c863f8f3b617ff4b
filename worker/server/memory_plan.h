// The worker's memory plan: what its weights, KV pool, recurrent state and activations take, and how many tokens
// the KV pool holds (with the served cache dtype, and what the same bytes would hold with FP8 or bf16 KV).
#pragma once

#include <cstdint>
#include <string>

#include "octet/v1/generation.pb.h"
#include "worker/engine/scheduler.h"
#include "worker/model/model_config.h"

namespace octet {

struct MemoryPlan {
  int64_t weights_bytes = 0;
  int64_t kv_cache_bytes = 0;
  int64_t state_bytes = 0;
  int64_t workspace_bytes = 0;
  int64_t device_total_bytes = 0;
  int64_t kv_cache_tokens = 0;
  int64_t kv_cache_tokens_fp8 = 0;
  int64_t kv_cache_tokens_bf16 = 0;

  v1::MemoryReport ToProto() const;
  // One line for the start-up log.
  std::string Summary() const;
};

// An upper bound on one engine step's activation memory (fp32): the forward pass's live tensors for
// max_num_batched_tokens tokens, the logits of max_num_seqs rows, plus fixed room for GEMM and attention scratch.
int64_t EstimateWorkspaceBytes(const ModelConfig& config, const SchedulerConfig& scheduler);

}  // namespace octet
