#include "worker/server/request_validator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace octet {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

RequestLimits Limits() {
  RequestLimits limits;
  limits.vocab_size = 100;
  limits.max_model_len = 50;
  return limits;  // max_logprobs 20, 16 stop strings of up to 256 bytes
}

// The status is INVALID_ARGUMENT and its message names `field` (in backticks, as the service edge writes them).
void ExpectInvalid(const absl::Status& status, const std::string& field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("`" + field + "`")) << status;
}

absl::Status Sampling(const v1::SamplingParams& s, int32_t prompt_len = 10) {
  return ValidateSampling(s, prompt_len, Limits()).status();
}

TEST(ValidatePromptTest, AcceptsIdsInRangeThatLeaveRoom) {
  const std::vector<int32_t> ids = {0, 1, 99, 42};
  EXPECT_TRUE(ValidatePrompt(ids, /*from_text=*/false, Limits()).ok());
  EXPECT_TRUE(ValidatePrompt(ids, /*from_text=*/true, Limits()).ok());
  const std::vector<int32_t> longest(49, 3);  // 49 + 1 generated = the context of 50
  EXPECT_TRUE(ValidatePrompt(longest, false, Limits()).ok());
}

TEST(ValidatePromptTest, EmptyPromptNamesTheField) {
  ExpectInvalid(ValidatePrompt({}, /*from_text=*/true, Limits()), "prompt");
  ExpectInvalid(ValidatePrompt({}, /*from_text=*/false, Limits()), "prompt_token_ids");
}

TEST(ValidatePromptTest, IdsOutOfRangeNameTheIndex) {
  const std::vector<int32_t> too_big = {1, 2, 100};
  ExpectInvalid(ValidatePrompt(too_big, false, Limits()), "prompt_token_ids[2]");
  const std::vector<int32_t> negative = {-1, 2};
  ExpectInvalid(ValidatePrompt(negative, false, Limits()), "prompt_token_ids[0]");
  const absl::Status s = ValidatePrompt(too_big, false, Limits());
  EXPECT_THAT(std::string(s.message()), HasSubstr("100"));
}

TEST(ValidatePromptTest, PromptThatFillsTheContextIsRejected) {
  for (int32_t n : {50, 51, 200}) {
    const std::vector<int32_t> ids(n, 1);
    for (bool from_text : {false, true}) {
      const absl::Status s = ValidatePrompt(ids, from_text, Limits());
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << n << " tokens: " << s;
      // Names the prompt and the context it must fit.
      EXPECT_THAT(std::string(s.message()), HasSubstr("prompt")) << s;
      EXPECT_THAT(std::string(s.message()), HasSubstr("50")) << s;
    }
  }
}

TEST(ValidateSamplingTest, UnsetFieldsGetDefaults) {
  v1::SamplingParams s;
  absl::StatusOr<SamplingParams> p = ValidateSampling(s, 10, Limits());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->max_tokens, 40);  // context 50 - prompt 10
  EXPECT_EQ(p->temperature, 1.0f);
  EXPECT_EQ(p->top_p, 1.0f);
  EXPECT_EQ(p->top_k, 0);
  EXPECT_EQ(p->logprobs, 0);
  EXPECT_TRUE(p->stop.empty());
  EXPECT_TRUE(p->stop_token_ids.empty());
  EXPECT_FALSE(p->ignore_eos);
  EXPECT_NE(p->seed, 0u);

  absl::StatusOr<SamplingParams> last_slot = ValidateSampling(s, 49, Limits());
  ASSERT_TRUE(last_slot.ok()) << last_slot.status();
  EXPECT_EQ(last_slot->max_tokens, 1);
}

TEST(ValidateSamplingTest, DerivedSeedsAreNonzeroAndVary) {
  v1::SamplingParams s;  // seed 0
  std::vector<uint64_t> seeds;
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<SamplingParams> p = ValidateSampling(s, 10, Limits());
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_NE(p->seed, 0u);
    seeds.push_back(p->seed);
  }
  std::sort(seeds.begin(), seeds.end());
  EXPECT_GT(std::unique(seeds.begin(), seeds.end()) - seeds.begin(), 1) << "every derived seed was the same";
}

TEST(ValidateSamplingTest, ValidValuesAreCopied) {
  v1::SamplingParams s;
  s.set_max_tokens(40);  // exactly the room left
  s.set_temperature(0.0f);
  s.set_top_p(1.0f);
  s.set_top_k(5);
  s.set_seed(1234);
  s.add_stop("END");
  s.add_stop(std::string(256, 'x'));
  s.add_stop_token_ids(0);
  s.add_stop_token_ids(99);
  s.set_ignore_eos(true);
  s.set_logprobs(20);
  absl::StatusOr<SamplingParams> p = ValidateSampling(s, 10, Limits());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->max_tokens, 40);
  EXPECT_EQ(p->temperature, 0.0f);
  EXPECT_TRUE(p->greedy());
  EXPECT_EQ(p->top_p, 1.0f);
  EXPECT_EQ(p->top_k, 5);
  EXPECT_EQ(p->seed, 1234u);
  EXPECT_EQ(p->stop, (std::vector<std::string>{"END", std::string(256, 'x')}));
  EXPECT_EQ(p->stop_token_ids, (std::vector<int32_t>{0, 99}));
  EXPECT_TRUE(p->ignore_eos);
  EXPECT_EQ(p->logprobs, 20);

  v1::SamplingParams small;
  small.set_top_p(0.001f);
  small.set_temperature(2.5f);
  small.set_max_tokens(1);
  absl::StatusOr<SamplingParams> q = ValidateSampling(small, 10, Limits());
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_FLOAT_EQ(q->top_p, 0.001f);
  EXPECT_FLOAT_EQ(q->temperature, 2.5f);
  EXPECT_EQ(q->max_tokens, 1);
}

TEST(ValidateSamplingTest, MaxTokensRules) {
  for (int32_t bad : {0, -1, -1000}) {
    v1::SamplingParams s;
    s.set_max_tokens(bad);
    ExpectInvalid(Sampling(s), "max_tokens");
  }
  v1::SamplingParams beyond;
  beyond.set_max_tokens(41);  // prompt 10 + 41 > 50
  ExpectInvalid(Sampling(beyond), "max_tokens");
  EXPECT_THAT(std::string(Sampling(beyond).message()), HasSubstr("40"));  // says what would fit
  beyond.set_max_tokens(std::numeric_limits<int32_t>::max());
  ExpectInvalid(Sampling(beyond), "max_tokens");
}

TEST(ValidateSamplingTest, TemperatureRules) {
  for (float bad : {-0.5f, -kInf, kInf, kNaN, -1e-30f}) {
    v1::SamplingParams s;
    s.set_temperature(bad);
    ExpectInvalid(Sampling(s), "temperature");
  }
}

TEST(ValidateSamplingTest, TopPRules) {
  for (float bad : {0.0f, -0.0f, 1.5f, 1.0000001f, -0.5f, kNaN, kInf}) {
    v1::SamplingParams s;
    s.set_top_p(bad);
    ExpectInvalid(Sampling(s), "top_p");
  }
}

TEST(ValidateSamplingTest, TopKRules) {
  v1::SamplingParams s;
  s.set_top_k(-1);
  ExpectInvalid(Sampling(s), "top_k");
  s.set_top_k(0);
  EXPECT_TRUE(Sampling(s).ok());
}

TEST(ValidateSamplingTest, LogprobsRules) {
  for (int32_t bad : {21, 1000, -1}) {
    v1::SamplingParams s;
    s.set_logprobs(bad);
    ExpectInvalid(Sampling(s), "logprobs");
  }
}

TEST(ValidateSamplingTest, StopStringLimits) {
  v1::SamplingParams too_many;
  for (int i = 0; i < 17; ++i) too_many.add_stop("s" + std::to_string(i));
  ExpectInvalid(Sampling(too_many), "stop");
  too_many.mutable_stop()->RemoveLast();  // 16 is the limit
  EXPECT_TRUE(Sampling(too_many).ok());

  v1::SamplingParams empty;
  empty.add_stop("ok");
  empty.add_stop("");
  ExpectInvalid(Sampling(empty), "stop[1]");

  v1::SamplingParams too_long;
  too_long.add_stop(std::string(257, 'x'));
  ExpectInvalid(Sampling(too_long), "stop[0]");
}

TEST(ValidateSamplingTest, StopTokenIdsOutOfRange) {
  for (int32_t bad : {100, -1, 1 << 30}) {
    v1::SamplingParams s;
    s.add_stop_token_ids(5);
    s.add_stop_token_ids(bad);
    ExpectInvalid(Sampling(s), "stop_token_ids[1]");
  }
}

}  // namespace
}  // namespace octet
