// WorkerMetrics: the exposition carries every octet_* metric in base units with the values the engine's events and
// snapshots put there, and the vLLM names only when asked.
#include "worker/server/worker_metrics.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace octet {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

WorkerMetricsInfo Info(bool vllm) {
  WorkerMetricsInfo info;
  info.model_name = "m";
  info.architecture = "qwen3_5_text";
  info.weight_dtype = "fp8_e4m3";
  info.kv_cache_dtype = "fp8_e4m3";
  info.compute_dtype = "fp32";
  info.backend = "cpu";
  info.block_size = 16;
  info.vllm_compat = vllm;
  info.memory.weights_bytes = 1000;
  info.memory.kv_cache_bytes = 2000;
  info.memory.kv_cache_tokens = 160;
  info.device_memory = [] { return DeviceMemory{7, 9}; };
  return info;
}

TEST(WorkerMetricsTest, EventsMoveTheMetrics) {
  WorkerMetrics m(Info(false));
  const std::string idle = m.Scrape();
  EXPECT_THAT(idle, HasSubstr("octet_generation_tokens_total 0"));
  EXPECT_THAT(idle, HasSubstr("octet_requests_total{finish_reason=\"length\",status=\"OK\"} 0"));
  EXPECT_THAT(idle, HasSubstr("octet_memory_bytes{kind=\"weights\"} 1000"));
  EXPECT_THAT(idle, HasSubstr("octet_memory_bytes{kind=\"kv_cache\"} 2000"));
  EXPECT_THAT(idle, HasSubstr("octet_device_memory_total_bytes{device=\"0\"} 9"));
  EXPECT_THAT(idle, HasSubstr("octet_kv_cache_block_size_tokens 16"));
  EXPECT_THAT(idle, HasSubstr("octet_model_info{"));
  EXPECT_THAT(idle, Not(HasSubstr("vllm:")));

  m.OnSnapshot({.num_running = 2, .num_waiting = 3, .num_free_blocks = 6, .num_total_blocks = 10});
  m.OnScheduled(0.5);
  m.OnStep(2, 100, 1, 0.02);
  m.OnHostTime(0.25);
  m.OnFirstToken(0.6);
  m.OnNextToken(0.03);
  m.OnNextToken(0.03);
  m.OnFinish(FinishReason::kLength, absl::StatusCode::kOk, 100, 3, 1.5);
  m.OnFinish(FinishReason::kError, absl::StatusCode::kDeadlineExceeded, 10, 0, 2.0);
  m.OnRejected(absl::StatusCode::kResourceExhausted);
  m.OnSnapshot({.num_free_blocks = 10,
                .num_cached_free_blocks = 7,
                .num_total_blocks = 10,
                .num_preemptions = 2,
                .prefix_query_tokens = 96,
                .prefix_hit_tokens = 64});
  const std::string after = m.Scrape();
  EXPECT_THAT(after, HasSubstr("octet_generation_tokens_total 3"));
  EXPECT_THAT(after, HasSubstr("octet_prompt_tokens_total 100"));
  EXPECT_THAT(after, HasSubstr("octet_requests_total{finish_reason=\"length\",status=\"OK\"} 1"));
  EXPECT_THAT(after, HasSubstr("octet_time_to_first_token_seconds_count 1"));
  EXPECT_THAT(after, HasSubstr("octet_inter_token_latency_seconds_count 2"));
  EXPECT_THAT(after, HasSubstr("octet_e2e_request_latency_seconds_sum 3.5"));
  EXPECT_THAT(after, HasSubstr("octet_request_queue_time_seconds_count 1"));
  EXPECT_THAT(after, HasSubstr("octet_batch_size_count 1"));
  EXPECT_THAT(after, HasSubstr("octet_engine_host_seconds_total 0.25"));
  EXPECT_THAT(after, HasSubstr("octet_preemptions_total 2"));
  EXPECT_THAT(after, HasSubstr("octet_requests_running 0"));
  EXPECT_THAT(after, HasSubstr("octet_kv_cache_used_blocks 0"));
  EXPECT_THAT(after, HasSubstr("octet_kv_cache_blocks 10"));
  EXPECT_THAT(after, HasSubstr("octet_kv_cache_cached_blocks 7"));
  EXPECT_THAT(after, HasSubstr("octet_prefix_cache_queries_total 96"));
  EXPECT_THAT(after, HasSubstr("octet_prefix_cache_hits_total 64"));
  EXPECT_THAT(after, HasSubstr("octet_requests_total{finish_reason=\"error\",status=\"DEADLINE_EXCEEDED\"} 1"));
  EXPECT_THAT(after, HasSubstr("octet_requests_rejected_total{status=\"RESOURCE_EXHAUSTED\"} 1"));
  EXPECT_THAT(after, HasSubstr("octet_requests_rejected_total{status=\"INVALID_ARGUMENT\"} 0"));

  // Counters follow the engine's running totals: a later snapshot adds only the difference.
  m.OnSnapshot({.num_total_blocks = 10, .num_preemptions = 3, .prefix_query_tokens = 100, .prefix_hit_tokens = 64});
  const std::string later = m.Scrape();
  EXPECT_THAT(later, HasSubstr("octet_preemptions_total 3"));
  EXPECT_THAT(later, HasSubstr("octet_prefix_cache_queries_total 100"));
  EXPECT_THAT(later, HasSubstr("octet_prefix_cache_hits_total 64"));
}

TEST(WorkerMetricsTest, KvUsageAndVllmNames) {
  WorkerMetrics m(Info(true));
  m.OnSnapshot({.num_running = 4,
                .num_waiting = 1,
                .num_free_blocks = 6,
                .num_total_blocks = 10,
                .num_preemptions = 1,
                .prefix_query_tokens = 32,
                .prefix_hit_tokens = 16});
  const std::string text = m.Scrape();
  EXPECT_THAT(text, HasSubstr("octet_kv_cache_used_blocks 4"));
  EXPECT_THAT(text, HasSubstr("octet_kv_cache_usage_ratio 0.4"));
  EXPECT_THAT(text, HasSubstr("vllm:num_requests_running{model_name=\"m\"} 4"));
  EXPECT_THAT(text, HasSubstr("vllm:num_requests_waiting{model_name=\"m\"} 1"));
  EXPECT_THAT(text, HasSubstr("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.4"));
  EXPECT_THAT(text, HasSubstr("vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"10\"} 1"));
  EXPECT_THAT(text, HasSubstr("vllm:prefix_cache_queries_total{model_name=\"m\"} 32"));
  EXPECT_THAT(text, HasSubstr("vllm:prefix_cache_hits_total{model_name=\"m\"} 16"));
  EXPECT_THAT(text, HasSubstr("vllm:num_preemptions_total{model_name=\"m\"} 1"));
}

}  // namespace
}  // namespace octet
