#include "worker/eval/eval_report.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace octet::eval {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

EvalResult SampleResult() {
  EvalResult r;
  r.model_name = "tiny";
  r.model_dir = "models/tiny";
  r.text_path = "bench/data/it's.txt";
  r.backend = "cpu";
  r.text_tokens = 5000;
  r.num_tokens = 1026;
  r.window = 512;
  r.num_windows = 3;
  r.scored_positions = 1023;
  SettingResult base;
  base.setting = kBaselineSetting;
  base.metrics = {.num_positions = 1023, .nll_sum = 1023 * std::log(10.0), .kl_sum = 0, .top1_matches = 1023};
  base.weight_bytes = 34'529'344;
  base.kv_bytes_per_token = 1024;
  SettingResult fp8;
  fp8.setting = {Fp8Recipe::kOfficial, DType::kF8E4M3};
  fp8.metrics = {.num_positions = 1023, .nll_sum = 1023 * std::log(10.1), .kl_sum = 1023 * 0.004, .top1_matches = 1000};
  fp8.weight_bytes = 22'570'000;
  fp8.fp8_weight_bytes = 12'000'000;
  fp8.fp8_layers = 40;
  fp8.other_layers = 15;
  fp8.kv_bytes_per_token = 544;
  r.settings = {base, fp8};
  return r;
}

TEST(EvalReportTest, TableHasOneRowPerSettingWithTheMetrics) {
  const std::string table = FormatTable(SampleResult());
  EXPECT_THAT(table, HasSubstr("tiny on bench/data/it's.txt"));
  EXPECT_THAT(table, HasSubstr("1,026 tokens (of 5,000 in the text) in 3 windows of 512: 1,023 scored positions"));
  EXPECT_THAT(table, HasSubstr("none/bf16 (baseline)"));
  EXPECT_THAT(table, HasSubstr("10.0000"));
  EXPECT_THAT(table, HasSubstr("official/fp8"));
  EXPECT_THAT(table, HasSubstr("10.1000"));
  EXPECT_THAT(table, HasSubstr("+1.000%"));    // perplexity against the baseline's
  EXPECT_THAT(table, HasSubstr("4.000e-03"));  // mean KL
  EXPECT_THAT(table, HasSubstr("97.752%"));    // 1000 / 1023
  EXPECT_THAT(table, HasSubstr("34.53 MB"));
  EXPECT_THAT(table, HasSubstr("22.57 MB"));
  EXPECT_THAT(table, HasSubstr("544"));
}

TEST(EvalReportTest, JsonHasTheRunAndEverySetting) {
  const nlohmann::json j = ReportJson(SampleResult(), {.date = "2026-11-27T12:00:00Z", .commit = "abc"});
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["text_file"], "bench/data/it's.txt");
  EXPECT_EQ(j["num_tokens"], 1026);
  EXPECT_EQ(j["text_tokens"], 5000);
  EXPECT_EQ(j["window"], 512);
  EXPECT_EQ(j["num_windows"], 3);
  EXPECT_EQ(j["date"], "2026-11-27T12:00:00Z");
  EXPECT_EQ(j["commit"], "abc");
  EXPECT_EQ(j["worktree_dirty"], false);
  EXPECT_EQ(j["baseline"], "none/bf16");
  ASSERT_EQ(j["settings"].size(), 2u);
  const nlohmann::json& s = j["settings"][1];
  EXPECT_EQ(s["name"], "official/fp8");
  EXPECT_EQ(s["recipe"], "official");
  EXPECT_EQ(s["kv_cache_dtype"], "fp8");
  EXPECT_NEAR(s["perplexity"].get<double>(), 10.1, 1e-9);
  EXPECT_NEAR(s["mean_kl"].get<double>(), 0.004, 1e-12);
  EXPECT_NEAR(s["top1_agreement"].get<double>(), 1000.0 / 1023, 1e-12);
  EXPECT_EQ(s["weight_bytes"], 22'570'000);
  EXPECT_EQ(s["fp8_weight_bytes"], 12'000'000);
  EXPECT_EQ(s["kv_bytes_per_token"], 544);
  EXPECT_EQ(j["settings"][0]["mean_kl"], 0.0);
}

TEST(EvalReportTest, NonFiniteNumbersBecomeNull) {
  EvalResult r = SampleResult();
  r.settings[1].metrics.nll_sum = NAN;
  const nlohmann::json j = ReportJson(r, {});
  EXPECT_TRUE(j["settings"][1]["perplexity"].is_null());
  EXPECT_NO_THROW(j.dump());
}

TEST(EvalReportTest, GnuplotScriptQuotesPathsAndCarriesTheData) {
  const std::string script = GnuplotScript(SampleResult(), {.date = "d", .commit = "c"}, "/tmp/it's.png");
  EXPECT_THAT(script, HasSubstr("set output '/tmp/it''s.png'"));
  EXPECT_THAT(script, HasSubstr("\"none/bf16\" 10 0 1\n"));
  EXPECT_THAT(script, HasSubstr("\"official/fp8\" 10.1"));
  EXPECT_THAT(script, HasSubstr("it''s.txt"));  // the title, quoted
}

TEST(EvalReportTest, WriteChartDrawsAPng) {
  const std::string png = ::testing::TempDir() + "/eval_chart.png";
  std::remove(png.c_str());
  absl::Status s = WriteChart(SampleResult(), {.date = UtcNow(), .commit = "c"}, png);
  if (absl::IsFailedPrecondition(s)) GTEST_SKIP() << s;  // gnuplot not installed (scripts/setup installs it)
  ASSERT_TRUE(s.ok()) << s;
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");

  // A folder that does not exist: gnuplot's own message comes back.
  s = WriteChart(SampleResult(), {}, ::testing::TempDir() + "/no/such/dir/chart.png");
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("gnuplot"));
}

TEST(EvalReportTest, DateIsIsoUtcAndCommitIsUnknownOutsideARepository) {
  EXPECT_THAT(UtcNow(), MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"));
  EXPECT_EQ(GitCommit("/"), "unknown");
  EXPECT_EQ(GitCommit("/no/such/dir"), "unknown");
  EXPECT_FALSE(GitDirty("/no/such/dir"));
}

}  // namespace
}  // namespace octet::eval
