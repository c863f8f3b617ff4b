#include "worker/tokenizer/pre_tokenizer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/tokenizer/fixtures.h"

namespace octet {
namespace {

std::vector<std::string> Split(SplitPattern pattern, std::string_view text) {
  std::vector<std::string_view> pieces;
  SplitText(pattern, text, &pieces);
  return std::vector<std::string>(pieces.begin(), pieces.end());
}

// JSON-escaped, for messages (ill-formed UTF-8 shows as U+FFFD rather than throwing).
template <typename T>
std::string Escaped(const T& value) {
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Random strings over letters, digits, contractions, every kind of white space, marks, emoji and
// supplementary-plane characters, split by Oniguruma inside HF tokenizers.
TEST(PreTokenizerTest, MatchesOniguruma) {
  const nlohmann::json cases = octet::testing::ReadJsonFixture("pretok_cases.json");
  ASSERT_GT(cases.size(), 1000u);
  int failures = 0;
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"];
    for (const auto& [key, pattern] :
         {std::pair{"qwen2", SplitPattern::kQwen2}, std::pair{"gpt2", SplitPattern::kGpt2}}) {
      const auto want = c[key].get<std::vector<std::string>>();
      const std::vector<std::string> got = Split(pattern, text);
      if (got != want && ++failures <= 20) {
        ADD_FAILURE() << key << " split " << Escaped(text) << ": got " << Escaped(got) << ", want " << Escaped(want);
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(PreTokenizerTest, Qwen2Splits) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split(SplitPattern::kQwen2, "Hello world"), V({"Hello", " world"}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, "a  \n  \n   b"), V({"a", "  \n  \n", "  ", " b"}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, "\t\tfoo"), V({"\t", "\tfoo"}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, "DON'T"), V({"DON", "'T"}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, "'\xc5\xbfx"), V({"'\xc5\xbf", "x"}));  // 'ſ folds to 's
  EXPECT_EQ(Split(SplitPattern::kQwen2, "x=123;"), V({"x", "=", "1", "2", "3", ";"}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, " (foo)\n\n"), V({" (", "foo", ")\n\n"}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, "end  "), V({"end", "  "}));
  EXPECT_EQ(Split(SplitPattern::kQwen2, ""), V());
}

TEST(PreTokenizerTest, Gpt2Splits) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split(SplitPattern::kGpt2, "Hello world"), V({"Hello", " world"}));
  EXPECT_EQ(Split(SplitPattern::kGpt2, "DON'T don't"), V({"DON", "'", "T", " don", "'t"}));
  EXPECT_EQ(Split(SplitPattern::kGpt2, "x=123;  y"), V({"x", "=", "123", ";", " ", " y"}));
  EXPECT_EQ(Split(SplitPattern::kGpt2, "a\n\nb"), V({"a", "\n", "\n", "b"}));  // only a space prefixes words
}

TEST(PreTokenizerTest, IllFormedBytesArePieces) {
  const std::string text = "ab\xff\xfe cd\xe4\xb8";
  std::string joined;
  for (const std::string& p : Split(SplitPattern::kQwen2, text)) {
    EXPECT_FALSE(p.empty());
    joined += p;
  }
  EXPECT_EQ(joined, text);
}

TEST(PreTokenizerTest, RecognisesPatterns) {
  EXPECT_EQ(*SplitPatternFromRegex(kQwen2Regex), SplitPattern::kQwen2);
  EXPECT_EQ(*SplitPatternFromRegex(kGpt2Regex), SplitPattern::kGpt2);
  const absl::StatusOr<SplitPattern> other = SplitPatternFromRegex(R"(\w+|\s+)");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(other.status().message().find(R"(\w+|\s+)"), std::string::npos) << other.status();
}

}  // namespace
}  // namespace octet
