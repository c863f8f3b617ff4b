// `octet bench`'s table and JSON: every metric under its stable name, the setting echoed, per-request lists.
#include "client/bench/bench_report.h"

#include <gtest/gtest.h>

#include <vector>

namespace octet::bench {
namespace {

BenchContext Context() {
  return {.address = "127.0.0.1:50051",
          .model_name = "m",
          .backend = "cpu",
          .date = "2026-01-01T00:00:00Z",
          .workload = {.num_prompts = 2, .input_len = 10, .output_len = 3, .shared_prefix_len = 4, .seed = 9},
          .load = {.max_concurrency = 0, .warmup = 1}};
}

std::vector<RequestResult> Requests() {
  std::vector<RequestResult> requests(2);
  requests[0] = {.prompt_tokens = 10, .output_tokens = 3, .ttft_s = 0.1, .e2e_s = 0.3, .itls_s = {0.1, 0.1}};
  requests[1] = {.status = absl::DeadlineExceededError("too slow"),
                 .prompt_tokens = 10,
                 .output_tokens = 1,
                 .ttft_s = 0.2,
                 .e2e_s = 1.0};
  return requests;
}

TEST(BenchReport, JsonHasTheMetricsAndTheSettingUnderFlatNames) {
  const std::vector<RequestResult> requests = Requests();
  const BenchMetrics metrics = ComputeMetrics(requests, 2.0);
  const nlohmann::json j = ReportJson(Context(), metrics, requests);
  EXPECT_EQ(j["address"], "127.0.0.1:50051");
  EXPECT_EQ(j["num_prompts"], 2);
  EXPECT_EQ(j["shared_prefix_len"], 4);
  EXPECT_EQ(j["seed"], 9);
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["duration"], 2.0);
  EXPECT_EQ(j["completed"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["failed_by_code"], nlohmann::json({{"DEADLINE_EXCEEDED", 1}}));
  EXPECT_EQ(j["total_input_tokens"], 10);
  EXPECT_EQ(j["total_output_tokens"], 3);
  EXPECT_DOUBLE_EQ(j["request_throughput"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["output_throughput"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(j["total_token_throughput"].get<double>(), 6.5);
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"}) {
    for (const char* stat : {"mean", "std", "median", "p90", "p99"}) {
      EXPECT_TRUE(j.contains(std::string(stat) + "_" + metric + "_ms")) << stat << "_" << metric << "_ms";
    }
  }
  EXPECT_DOUBLE_EQ(j["mean_ttft_ms"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(j["mean_tpot_ms"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(j["p99_e2el_ms"].get<double>(), 300.0);
  EXPECT_EQ(j["input_lens"], nlohmann::json({10, 10}));
  EXPECT_EQ(j["output_lens"], nlohmann::json({3, 1}));
  EXPECT_EQ(j["itls_ms"].size(), 2u);
  EXPECT_EQ(j["itls_ms"][0].size(), 2u);
  EXPECT_EQ(j["errors"], nlohmann::json({"", "DEADLINE_EXCEEDED: too slow"}));
  for (const auto& [key, value] : j.items()) EXPECT_FALSE(value.is_object() && key != "failed_by_code") << key;
}

TEST(BenchReport, TableShowsCountsFailuresAndLatencies) {
  const std::vector<RequestResult> requests = Requests();
  BenchContext context = Context();
  context.load.request_rate = 4.0;
  context.load.max_concurrency = 8;
  const std::string table = FormatTable(context, ComputeMetrics(requests, 2.0));
  for (const char* line :
       {"Successful requests:                     1\n", "Failed requests:                         1\n",
        "  DEADLINE_EXCEEDED:                     1\n", "Benchmark duration (s):                  2.00\n",
        "Output token throughput (tok/s):         1.50\n", "Request rate (req/s):                    4.00\n",
        "Maximum request concurrency:             8\n", "Shared prefix tokens:                    4\n",
        "Mean TTFT (ms):                          100.00\n", "P99 E2EL (ms):                           300.00\n"}) {
    EXPECT_NE(table.find(line), std::string::npos) << line << "\nnot in\n" << table;
  }
  for (const char* section :
       {"Time to First Token", "Time per Output Token", "Inter-token Latency", "End-to-end Latency"}) {
    EXPECT_NE(table.find(section), std::string::npos) << section;
  }
}

}  // namespace
}  // namespace octet::bench
