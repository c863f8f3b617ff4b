// The prompt builder of `octet bench`: lengths, the shared prefix, the token id range, determinism, validation.
#include "client/bench/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace octet::bench {
namespace {

TEST(Workload, FixedLengthsGiveEveryPromptInputLenTokensAndOutputLen) {
  const WorkloadOptions options{.input_len = 32, .output_len = 16, .seed = 7};
  const std::vector<BenchPrompt> prompts = BuildPrompts(options, /*vocab_size=*/8192, /*count=*/50);
  ASSERT_EQ(prompts.size(), 50u);
  for (const BenchPrompt& p : prompts) {
    EXPECT_EQ(p.token_ids.size(), 32u);
    EXPECT_EQ(p.max_tokens, 16);
  }
}

TEST(Workload, RangeRatioDrawsLengthsAcrossTheWholeRange) {
  const WorkloadOptions options{.input_len = 100, .output_len = 40, .random_range_ratio = 0.5, .seed = 1};
  EXPECT_EQ(InputLengthRange(options).min, 50);
  EXPECT_EQ(InputLengthRange(options).max, 150);
  EXPECT_EQ(OutputLengthRange(options).min, 20);
  EXPECT_EQ(OutputLengthRange(options).max, 60);
  // 100 * 1.1 is 110.00000000000001 in doubles; the range still ends at 110.
  EXPECT_EQ(InputLengthRange({.input_len = 100, .random_range_ratio = 0.1}).min, 90);
  EXPECT_EQ(InputLengthRange({.input_len = 100, .random_range_ratio = 0.1}).max, 110);
  const std::vector<BenchPrompt> prompts = BuildPrompts(options, 8192, 2000);
  std::vector<int> inputs;
  std::vector<int> outputs;
  for (const BenchPrompt& p : prompts) {
    inputs.push_back(static_cast<int>(p.token_ids.size()));
    outputs.push_back(p.max_tokens);
  }
  EXPECT_EQ(*std::min_element(inputs.begin(), inputs.end()), 50);
  EXPECT_EQ(*std::max_element(inputs.begin(), inputs.end()), 150);
  EXPECT_EQ(*std::min_element(outputs.begin(), outputs.end()), 20);
  EXPECT_EQ(*std::max_element(outputs.begin(), outputs.end()), 60);
  double mean = 0;
  for (int n : inputs) mean += n;
  mean /= static_cast<double>(inputs.size());
  EXPECT_NEAR(mean, 100.0, 3.0);  // uniform on [50, 150]: sd of the mean of 2000 is 0.65
}

TEST(Workload, ShortRangesStayAtLeastOneToken) {
  const WorkloadOptions options{.input_len = 1, .output_len = 1, .random_range_ratio = 0.9};
  EXPECT_EQ(InputLengthRange(options).min, 1);
  for (const BenchPrompt& p : BuildPrompts(options, 100, 200)) {
    EXPECT_GE(p.token_ids.size(), 1u);
    EXPECT_GE(p.max_tokens, 1);
  }
}

TEST(Workload, SharedPrefixIsIdenticalAndTheRestDiffers) {
  const WorkloadOptions options{.input_len = 64, .random_range_ratio = 0.2, .shared_prefix_len = 40, .seed = 3};
  const std::vector<BenchPrompt> prompts = BuildPrompts(options, 8192, 20);
  const std::vector<int32_t> prefix(prompts[0].token_ids.begin(), prompts[0].token_ids.begin() + 40);
  std::set<std::vector<int32_t>> suffixes;
  for (const BenchPrompt& p : prompts) {
    ASSERT_GE(p.token_ids.size(), 40u);
    EXPECT_EQ(std::vector<int32_t>(p.token_ids.begin(), p.token_ids.begin() + 40), prefix);
    suffixes.emplace(p.token_ids.begin() + 40, p.token_ids.end());
  }
  EXPECT_EQ(suffixes.size(), prompts.size());
}

TEST(Workload, WithoutSharedPrefixPromptsDifferFromTheFirstToken) {
  const std::vector<BenchPrompt> prompts = BuildPrompts({.input_len = 16, .seed = 3}, 8192, 20);
  std::set<int32_t> first_tokens;
  for (const BenchPrompt& p : prompts) first_tokens.insert(p.token_ids[0]);
  EXPECT_GT(first_tokens.size(), 15u);
}

TEST(Workload, TokenIdsStayInTheLowestNinetyPercentOfTheVocabulary) {
  EXPECT_EQ(PromptTokenIdLimit(151936), 136742);
  EXPECT_EQ(PromptTokenIdLimit(8192), 7372);
  EXPECT_EQ(PromptTokenIdLimit(1), 1);
  const std::vector<BenchPrompt> prompts = BuildPrompts({.input_len = 500, .shared_prefix_len = 10}, 1000, 20);
  int32_t lo = 1000;
  int32_t hi = -1;
  for (const BenchPrompt& p : prompts) {
    for (int32_t id : p.token_ids) {
      lo = std::min(lo, id);
      hi = std::max(hi, id);
    }
  }
  EXPECT_GE(lo, 0);
  EXPECT_LT(hi, 900);
  EXPECT_LE(lo, 5);  // 10,000 draws cover the range's ends
  EXPECT_GE(hi, 895);
}

TEST(Workload, TheSameSeedGivesTheSamePrompts) {
  const WorkloadOptions options{.input_len = 24, .random_range_ratio = 0.5, .shared_prefix_len = 4, .seed = 11};
  const std::vector<BenchPrompt> a = BuildPrompts(options, 8192, 10);
  const std::vector<BenchPrompt> b = BuildPrompts(options, 8192, 10);
  WorkloadOptions other = options;
  other.seed = 12;
  const std::vector<BenchPrompt> c = BuildPrompts(other, 8192, 10);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].token_ids, b[i].token_ids);
    EXPECT_EQ(a[i].max_tokens, b[i].max_tokens);
  }
  EXPECT_NE(a[0].token_ids, c[0].token_ids);
}

TEST(Workload, ValidationNamesTheFlag) {
  EXPECT_TRUE(ValidateWorkload({}).ok());
  const auto message = [](const WorkloadOptions& o) { return std::string(ValidateWorkload(o).message()); };
  EXPECT_EQ(ValidateWorkload({.num_prompts = 0}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(message({.num_prompts = 0}), "--num-prompts must be >= 1, got 0");
  EXPECT_EQ(message({.input_len = 0}), "--input-len must be >= 1, got 0");
  EXPECT_EQ(message({.output_len = -3}), "--output-len must be >= 1, got -3");
  EXPECT_EQ(message({.random_range_ratio = 1.0}), "--random-range-ratio must be in [0, 1), got 1");
  EXPECT_EQ(message({.random_range_ratio = -0.1}), "--random-range-ratio must be in [0, 1), got -0.1");
  EXPECT_EQ(message({.shared_prefix_len = -1}), "--shared-prefix-len must be >= 0, got -1");
  EXPECT_TRUE(ValidateWorkload({.input_len = 10, .shared_prefix_len = 10}).ok());
  EXPECT_EQ(message({.input_len = 100, .random_range_ratio = 0.5, .shared_prefix_len = 51}),
            "--shared-prefix-len 51 is longer than the shortest prompt (50 tokens): the prefix is part of "
            "--input-len");
}

TEST(Workload, TheLongestPromptAndOutputMustFitTheContext) {
  EXPECT_TRUE(CheckWorkloadFitsModel({.input_len = 500, .output_len = 12}, 8192, 512).ok());
  const absl::Status too_long = CheckWorkloadFitsModel({.input_len = 501, .output_len = 12}, 8192, 512);
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(too_long.message(),
            "--input-len 501 plus --output-len 12 tokens does not fit the model's context of "
            "512 tokens");
  // With a range ratio the longest draw counts: 400 * 1.3 = 520.
  const absl::Status ranged =
      CheckWorkloadFitsModel({.input_len = 400, .output_len = 10, .random_range_ratio = 0.3}, 8192, 512);
  EXPECT_EQ(ranged.message(),
            "--input-len 400 (up to 520) plus --output-len 10 (up to 13) tokens does not fit the "
            "model's context of 512 tokens");
  EXPECT_FALSE(CheckWorkloadFitsModel({.input_len = 4, .output_len = 4}, 0, 512).ok());
}

}  // namespace
}  // namespace octet::bench
