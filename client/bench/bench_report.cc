#include "client/bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace octet::bench {
namespace {

constexpr int kWidth = 50;

// " Title " centred in a line of `fill`, as vLLM's benchmark_serving prints its section headers.
std::string Rule(absl::string_view title, char fill) {
  const std::string padded = title.empty() ? std::string() : absl::StrCat(" ", title, " ");
  const int left = std::max(0, (kWidth - static_cast<int>(padded.size())) / 2);
  const int right = std::max(0, kWidth - left - static_cast<int>(padded.size()));
  return absl::StrCat(std::string(left, fill), padded, std::string(right, fill), "\n");
}

std::string Row(absl::string_view label, absl::string_view value) {
  return absl::StrFormat("%-40s %s\n", absl::StrCat(label, ":"), value);
}

std::string Fixed(double v) { return absl::StrFormat("%.2f", v); }

std::string Rate(double rate) { return std::isinf(rate) ? std::string("inf") : Fixed(rate); }

std::string LengthText(int32_t len, double ratio) {
  if (ratio <= 0.0) return absl::StrCat(len);
  return absl::StrFormat("%d (+/- %g%%)", len, ratio * 100.0);
}

std::string Section(absl::string_view title, absl::string_view short_name, const Distribution& d) {
  return absl::StrCat(Rule(title, '-'), Row(absl::StrCat("Mean ", short_name, " (ms)"), Fixed(d.mean)),
                      Row(absl::StrCat("Median ", short_name, " (ms)"), Fixed(d.median)),
                      Row(absl::StrCat("P90 ", short_name, " (ms)"), Fixed(d.p90)),
                      Row(absl::StrCat("P99 ", short_name, " (ms)"), Fixed(d.p99)));
}

void AddDistribution(nlohmann::json& j, absl::string_view name, const Distribution& d) {
  j[absl::StrCat("mean_", name, "_ms")] = d.mean;
  j[absl::StrCat("std_", name, "_ms")] = d.std;
  j[absl::StrCat("median_", name, "_ms")] = d.median;
  j[absl::StrCat("p90_", name, "_ms")] = d.p90;
  j[absl::StrCat("p99_", name, "_ms")] = d.p99;
}

}  // namespace

std::string FormatTable(const BenchContext& context, const BenchMetrics& metrics) {
  const WorkloadOptions& w = context.workload;
  std::string out = Rule("Serving Benchmark Result", '=');
  out += Row("Server", context.address);
  out += Row("Model", absl::StrCat(context.model_name, " (", context.backend, ")"));
  out += Row("Prompts", absl::StrCat(w.num_prompts, " (+", context.load.warmup, " warm-up)"));
  out += Row("Input tokens a prompt", LengthText(w.input_len, w.random_range_ratio));
  if (w.shared_prefix_len > 0) out += Row("Shared prefix tokens", absl::StrCat(w.shared_prefix_len));
  out += Row("Output tokens a request", LengthText(w.output_len, w.random_range_ratio));
  out += Row("Request rate (req/s)", Rate(context.load.request_rate));
  if (context.load.max_concurrency > 0) {
    out += Row("Maximum request concurrency", absl::StrCat(context.load.max_concurrency));
  }
  out += Rule("", '-');
  out += Row("Successful requests", absl::StrCat(metrics.completed));
  out += Row("Failed requests", absl::StrCat(metrics.failed));
  for (const auto& [code, count] : metrics.failed_by_code) out += Row(absl::StrCat("  ", code), absl::StrCat(count));
  out += Row("Benchmark duration (s)", Fixed(metrics.duration_s));
  out += Row("Total input tokens", absl::StrCat(metrics.total_input_tokens));
  out += Row("Total generated tokens", absl::StrCat(metrics.total_output_tokens));
  out += Row("Request throughput (req/s)", Fixed(metrics.request_throughput));
  out += Row("Output token throughput (tok/s)", Fixed(metrics.output_throughput));
  out += Row("Total token throughput (tok/s)", Fixed(metrics.total_token_throughput));
  out += Section("Time to First Token", "TTFT", metrics.ttft_ms);
  out += Section("Time per Output Token (excl. 1st token)", "TPOT", metrics.tpot_ms);
  out += Section("Inter-token Latency", "ITL", metrics.itl_ms);
  out += Section("End-to-end Latency", "E2EL", metrics.e2el_ms);
  out += Rule("", '=');
  return out;
}

nlohmann::json ReportJson(const BenchContext& context, const BenchMetrics& metrics,
                          const std::vector<RequestResult>& requests) {
  const WorkloadOptions& w = context.workload;
  nlohmann::json j = nlohmann::json::object();
  j["address"] = context.address;
  j["model_name"] = context.model_name;
  j["backend"] = context.backend;
  j["date"] = context.date;
  j["num_prompts"] = w.num_prompts;
  j["input_len"] = w.input_len;
  j["output_len"] = w.output_len;
  j["random_range_ratio"] = w.random_range_ratio;
  j["shared_prefix_len"] = w.shared_prefix_len;
  j["seed"] = w.seed;
  // JSON has no infinity: "inf" as vLLM writes it.
  j["request_rate"] =
      std::isinf(context.load.request_rate) ? nlohmann::json("inf") : nlohmann::json(context.load.request_rate);
  j["max_concurrency"] =
      context.load.max_concurrency > 0 ? nlohmann::json(context.load.max_concurrency) : nlohmann::json(nullptr);
  j["warmup"] = context.load.warmup;
  j["temperature"] = context.load.temperature;

  j["duration"] = metrics.duration_s;
  j["completed"] = metrics.completed;
  j["failed"] = metrics.failed;
  j["failed_by_code"] = nlohmann::json::object();
  for (const auto& [code, count] : metrics.failed_by_code) j["failed_by_code"][code] = count;
  j["total_input_tokens"] = metrics.total_input_tokens;
  j["total_output_tokens"] = metrics.total_output_tokens;
  j["request_throughput"] = metrics.request_throughput;
  j["output_throughput"] = metrics.output_throughput;
  j["total_token_throughput"] = metrics.total_token_throughput;
  AddDistribution(j, "ttft", metrics.ttft_ms);
  AddDistribution(j, "tpot", metrics.tpot_ms);
  AddDistribution(j, "itl", metrics.itl_ms);
  AddDistribution(j, "e2el", metrics.e2el_ms);

  nlohmann::json input_lens = nlohmann::json::array();
  nlohmann::json output_lens = nlohmann::json::array();
  nlohmann::json ttfts = nlohmann::json::array();
  nlohmann::json e2els = nlohmann::json::array();
  nlohmann::json itls = nlohmann::json::array();
  nlohmann::json errors = nlohmann::json::array();
  for (const RequestResult& r : requests) {
    input_lens.push_back(r.prompt_tokens);
    output_lens.push_back(r.output_tokens);
    ttfts.push_back(r.ttft_s * 1000.0);
    e2els.push_back(r.e2e_s * 1000.0);
    nlohmann::json gaps = nlohmann::json::array();
    for (double itl : r.itls_s) gaps.push_back(itl * 1000.0);
    itls.push_back(std::move(gaps));
    errors.push_back(r.status.ok() ? std::string()
                                   : absl::StrCat(absl::StatusCodeToString(r.status.code()), ": ", r.status.message()));
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = std::move(output_lens);
  j["ttfts_ms"] = std::move(ttfts);
  j["e2els_ms"] = std::move(e2els);
  j["itls_ms"] = std::move(itls);
  j["errors"] = std::move(errors);
  return j;
}

}  // namespace octet::bench
