#include "worker/tokenizer/added_tokens.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace octet {
namespace {

// Segments as "text" or "[id:text]" for readable comparisons.
std::vector<std::string> Show(const AddedTokenMatcher& m, std::string_view text) {
  std::vector<TextSegment> segments;
  m.Split(text, &segments);
  std::vector<std::string> out;
  for (const TextSegment& s : segments) {
    const std::string piece(text.substr(s.begin, s.end - s.begin));
    out.push_back(s.token_id == TextSegment::kPlainText ? piece : "[" + std::to_string(s.token_id) + ":" + piece + "]");
  }
  return out;
}

AddedToken Token(std::string content, int32_t id, bool lstrip = false, bool rstrip = false) {
  AddedToken t;
  t.content = std::move(content);
  t.id = id;
  t.lstrip = lstrip;
  t.rstrip = rstrip;
  return t;
}

using V = std::vector<std::string>;

TEST(AddedTokensTest, LeftmostLongest) {
  AddedTokenMatcher m;
  m.Add(Token("<a>", 1));
  m.Add(Token("<a><b>", 2));
  m.Add(Token("ab", 3));
  m.Add(Token("bc", 4));
  EXPECT_EQ(Show(m, "x<a><b>y<a>"), V({"x", "[2:<a><b>]", "y", "[1:<a>]"}));
  EXPECT_EQ(Show(m, "abc"), V({"[3:ab]", "c"}));      // leftmost wins over the overlapping "bc"
  EXPECT_EQ(Show(m, "<a><b"), V({"[1:<a>]", "<b"}));  // a longer token that does not complete
  EXPECT_EQ(Show(m, "plain"), V({"plain"}));
  EXPECT_EQ(Show(m, ""), V());
}

TEST(AddedTokensTest, StripTakesAdjacentWhiteSpace) {
  AddedTokenMatcher m;
  m.Add(Token("<mask>", 1, /*lstrip=*/true));
  m.Add(Token("[SEP]", 2, /*lstrip=*/false, /*rstrip=*/true));
  EXPECT_EQ(Show(m, "x  <mask> y"), V({"x", "[1:  <mask>]", " y"}));
  EXPECT_EQ(Show(m, "x[SEP] \t y"), V({"x", "[2:[SEP] \t ]", "y"}));
  EXPECT_EQ(Show(m, "x\xe3\x80\x80<mask>"), V({"x", "[1:\xe3\x80\x80<mask>]"}));  // U+3000 is white space
  // lstrip never reaches back into the previous token.
  EXPECT_EQ(Show(m, "[SEP]  <mask>"), V({"[2:[SEP]  ]", "[1:<mask>]"}));
}

TEST(AddedTokensTest, EmptyMatcher) {
  AddedTokenMatcher m;
  EXPECT_TRUE(m.empty());
  m.Add(Token("", 5));  // ignored
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(Show(m, "abc"), V({"abc"}));
}

}  // namespace
}  // namespace octet
