#include "worker/eval/evaluator.h"

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "worker/runtime/cpu_backend.h"

namespace octet::eval {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// Row p puts logit `strength` on token (ids[p] + offset) % vocab and 0 on every other token.
class BumpSource : public LogitSource {
 public:
  BumpSource(int32_t vocab, int32_t offset, float strength) : vocab_(vocab), offset_(offset), strength_(strength) {}
  int32_t vocab_size() const override { return vocab_; }
  std::vector<float> WindowLogits(absl::Span<const int32_t> ids) override {
    ++calls;
    std::vector<float> out(ids.size() * vocab_, 0.0f);
    for (size_t p = 0; p < ids.size(); ++p) out[p * vocab_ + (ids[p] + offset_) % vocab_] = strength_;
    return out;
  }
  int calls = 0;

 private:
  int32_t vocab_, offset_;
  float strength_;
};

std::vector<float> BumpRow(int32_t vocab, int32_t at, float strength) {
  std::vector<float> row(vocab, 0.0f);
  row[at] = strength;
  return row;
}

TEST(SplitWindowsTest, NonOverlappingWindowsKeepALastPartialOneOfTwoOrMoreTokens) {
  EXPECT_THAT(SplitWindows(10, 4), ElementsAre(Pair(0, 4), Pair(4, 8), Pair(8, 10)));
  EXPECT_THAT(SplitWindows(9, 4), ElementsAre(Pair(0, 4), Pair(4, 8)));  // one token left: nothing to score
  EXPECT_THAT(SplitWindows(8, 4), ElementsAre(Pair(0, 4), Pair(4, 8)));
  EXPECT_THAT(SplitWindows(3, 512), ElementsAre(Pair(0, 3)));
  EXPECT_TRUE(SplitWindows(1, 4).empty());
}

TEST(SettingGridTest, BaselineFirstThenRecipesTimesKvDtypesWithoutDuplicates) {
  const std::vector<EvalSetting> grid =
      SettingGrid({Fp8Recipe::kOfficial, Fp8Recipe::kNone}, {DType::kF8E4M3, DType::kBF16});
  std::vector<std::string> names;
  for (const EvalSetting& s : grid) names.push_back(SettingName(s));
  EXPECT_THAT(names, ElementsAre("none/bf16", "official/fp8", "official/bf16", "none/fp8"));

  const std::vector<EvalSetting> fp32 = SettingGrid({Fp8Recipe::kNone}, {DType::kF32});
  ASSERT_EQ(fp32.size(), 2u);
  EXPECT_EQ(fp32[0], kBaselineSetting);
  EXPECT_EQ(SettingName(fp32[1]), "none/fp32");
  EXPECT_EQ(SettingName({Fp8Recipe::kMlpOnly, DType::kF8E4M3}), "mlp-only/fp8");
}

TEST(EvaluatorTest, ScoresEverySourceAgainstTheBaselineWindowByWindow) {
  const int32_t vocab = 11;
  BumpSource baseline(vocab, 1, 3.0f);  // always puts its bump on the true next token of the text below
  BumpSource same(vocab, 1, 3.0f);
  BumpSource shifted(vocab, 2, 3.0f);  // bump one token off: never agrees with the baseline
  BumpSource flatter(vocab, 1, 1.0f);  // same argmax, less confident
  std::vector<int32_t> text(25);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>(i) % vocab;

  Evaluator evaluator({&baseline, &same, &shifted, &flatter}, /*num_threads=*/1);
  for (const auto& [begin, end] : SplitWindows(25, 8)) {
    evaluator.AddWindow(absl::MakeConstSpan(text).subspan(begin, end - begin));
  }
  evaluator.AddWindow(absl::MakeConstSpan(text).subspan(0, 1));  // a single token scores nothing and runs nothing
  EXPECT_EQ(baseline.calls, 3);

  const std::vector<Metrics>& m = evaluator.metrics();
  ASSERT_EQ(m.size(), 4u);
  const int64_t positions = 7 + 7 + 7;  // windows [0, 8), [8, 16), [16, 24); token 24 alone predicts nothing
  for (const Metrics& x : m) EXPECT_EQ(x.num_positions, positions);

  const double nll = std::log(std::exp(3.0) + vocab - 1) - 3.0;  // -log P(bump) with the bump on the target
  EXPECT_NEAR(m[0].MeanNll(), nll, 1e-9);
  EXPECT_EQ(m[0].MeanKl(), 0.0);
  EXPECT_EQ(m[0].Top1Agreement(), 1.0);

  EXPECT_NEAR(m[1].Perplexity(), m[0].Perplexity(), 1e-12);
  EXPECT_EQ(m[1].MeanKl(), 0.0);
  EXPECT_EQ(m[1].Top1Agreement(), 1.0);

  const double kl_shifted = KlDivergence(BumpRow(vocab, 1, 3.0f), BumpRow(vocab, 2, 3.0f));
  EXPECT_GT(kl_shifted, 0.5);
  EXPECT_NEAR(m[2].MeanKl(), kl_shifted, 1e-9);
  EXPECT_EQ(m[2].Top1Agreement(), 0.0);
  EXPECT_NEAR(m[2].MeanNll(), std::log(std::exp(3.0) + vocab - 1), 1e-9);  // the target gets logit 0

  const double kl_flatter = KlDivergence(BumpRow(vocab, 0, 3.0f), BumpRow(vocab, 0, 1.0f));
  EXPECT_NEAR(m[3].MeanKl(), kl_flatter, 1e-9);
  EXPECT_EQ(m[3].Top1Agreement(), 1.0);
  EXPECT_GT(m[3].Perplexity(), m[0].Perplexity());
}

TEST(EvaluatorTest, ThreadsGiveTheSameNumbers) {
  const int32_t vocab = 13;
  std::vector<BumpSource> sources;
  for (int i = 0; i < 6; ++i) sources.emplace_back(vocab, 1 + i % 3, 1.0f + i);
  std::vector<int32_t> text(100);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<int32_t>((i * 7) % vocab);

  auto run = [&](int threads) {
    std::vector<LogitSource*> ptrs;
    for (BumpSource& s : sources) ptrs.push_back(&s);
    Evaluator evaluator(ptrs, threads);
    for (const auto& [begin, end] : SplitWindows(100, 16)) {
      evaluator.AddWindow(absl::MakeConstSpan(text).subspan(begin, end - begin));
    }
    return evaluator.metrics();
  };
  const std::vector<Metrics> one = run(1), four = run(4);
  ASSERT_EQ(one.size(), four.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].num_positions, four[i].num_positions) << i;
    EXPECT_EQ(one[i].nll_sum, four[i].nll_sum) << i;
    EXPECT_EQ(one[i].kl_sum, four[i].kl_sum) << i;
    EXPECT_EQ(one[i].top1_matches, four[i].top1_matches) << i;
  }
  EXPECT_GT(one[1].kl_sum, 0.0);
}

// RunEval on the bundled model (models/qwen3_5-code-small; tests run from the source root).
class RunEvalTest : public ::testing::Test {
 protected:
  std::string WriteText(const std::string& text) {
    const std::string path = ::testing::TempDir() + "/eval_text.txt";
    std::ofstream(path) << text;
    return path;
  }
  EvalOptions Options(const std::string& text_path) {
    EvalOptions o;
    o.model_dir = "models/qwen3_5-code-small";
    o.text_path = text_path;
    o.settings = SettingGrid({Fp8Recipe::kNone}, {DType::kF32});
    return o;
  }
  CpuBackend backend_;
};

TEST_F(RunEvalTest, ScoresTheTextInWindowsUnderEachSetting) {
  EvalOptions o =
      Options(WriteText("import os\n\n\ndef main(argv):\n    for name in os.listdir(argv[1]):\n"
                        "        print(name)\n    return 0\n"));
  o.window = 8;
  o.max_tokens = 14;
  o.num_threads = 2;
  int64_t last_done = 0, last_total = 0;
  o.progress = [&](int64_t done, int64_t total) { last_done = done, last_total = total; };
  absl::StatusOr<EvalResult> r = RunEval(o, backend_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name, "qwen3_5-code-small");
  EXPECT_EQ(r->backend, "cpu");
  EXPECT_GT(r->text_tokens, 14);
  EXPECT_EQ(r->num_tokens, 14);
  EXPECT_EQ(r->window, 8);
  EXPECT_EQ(r->num_windows, 2);        // [0, 8) and [8, 14)
  EXPECT_EQ(r->scored_positions, 12);  // 7 + 5
  EXPECT_EQ(last_done, 2);
  EXPECT_EQ(last_total, 2);
  ASSERT_EQ(r->settings.size(), 2u);
  const SettingResult& base = r->settings[0];
  EXPECT_EQ(base.setting, kBaselineSetting);
  EXPECT_TRUE(std::isfinite(base.metrics.Perplexity()));
  EXPECT_GT(base.metrics.Perplexity(), 1.0);
  EXPECT_LT(base.metrics.Perplexity(), 8192.0);
  EXPECT_EQ(base.metrics.MeanKl(), 0.0);
  // 2 full-attention layers x 2 KV heads x 64 dims x (K and V): 1,024 bytes in bf16, 2,048 in fp32.
  EXPECT_EQ(base.kv_bytes_per_token, 1024);
  EXPECT_EQ(r->settings[1].kv_bytes_per_token, 2048);
  // 17,264,672 BF16 parameters.
  EXPECT_EQ(base.weight_bytes, 2 * 17264672);
  EXPECT_EQ(base.fp8_weight_bytes, 0);
  const Metrics& fp32 = r->settings[1].metrics;
  EXPECT_EQ(fp32.num_positions, 12);
  EXPECT_GE(fp32.MeanKl(), 0.0);
  EXPECT_LT(fp32.MeanKl(), 1e-3);  // a BF16 KV cache barely moves the distribution
  EXPECT_NEAR(fp32.Perplexity(), base.metrics.Perplexity(), 0.01 * base.metrics.Perplexity());
}

TEST_F(RunEvalTest, RejectsBadInputs) {
  const std::string text = WriteText("def f(x):\n    return x + 1\n");
  EvalOptions no_baseline = Options(text);
  no_baseline.settings.erase(no_baseline.settings.begin());
  EXPECT_EQ(RunEval(no_baseline, backend_).status().code(), absl::StatusCode::kInvalidArgument);

  EvalOptions missing = Options(::testing::TempDir() + "/no_such_text.txt");
  EXPECT_EQ(RunEval(missing, backend_).status().code(), absl::StatusCode::kNotFound);

  EvalOptions too_wide = Options(text);
  too_wide.window = 4096;  // the model's context is 2048
  absl::Status s = RunEval(too_wide, backend_).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("2048"));

  EvalOptions one_token = Options(WriteText("x"));
  EXPECT_EQ(RunEval(one_token, backend_).status().code(), absl::StatusCode::kInvalidArgument);

  EvalOptions no_model = Options(text);
  no_model.model_dir = ::testing::TempDir() + "/no_such_model";
  EXPECT_FALSE(RunEval(no_model, backend_).ok());
}

}  // namespace
}  // namespace octet::eval
