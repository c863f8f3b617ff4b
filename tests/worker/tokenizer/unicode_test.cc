#include "worker/tokenizer/unicode.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/tokenizer/fixtures.h"
#include "worker/tokenizer/unicode_tables.h"
#include "worker/tokenizer/utf8.h"

namespace octet::unicode {
namespace {

using unicode_tables::CodePointRange;

TEST(UnicodeTest, ClassifiesKnownCharacters) {
  EXPECT_EQ(Classify(U'a'), CharClass::kLetter);
  EXPECT_EQ(Classify(U'Z'), CharClass::kLetter);
  EXPECT_EQ(Classify(U'5'), CharClass::kNumber);
  EXPECT_EQ(Classify(U'_'), CharClass::kOther);
  EXPECT_EQ(Classify(U'\''), CharClass::kOther);
  EXPECT_EQ(Classify(0x00E9), CharClass::kLetter);   // é
  EXPECT_EQ(Classify(0x4E2D), CharClass::kLetter);   // 中 (Lo)
  EXPECT_EQ(Classify(0x3042), CharClass::kLetter);   // あ
  EXPECT_EQ(Classify(0x02B0), CharClass::kLetter);   // ʰ (Lm)
  EXPECT_EQ(Classify(0x0301), CharClass::kMark);     // combining acute (Mn)
  EXPECT_EQ(Classify(0x093F), CharClass::kMark);     // Devanagari vowel sign i (Mc)
  EXPECT_EQ(Classify(0x094D), CharClass::kMark);     // Devanagari virama (Mn)
  EXPECT_EQ(Classify(0x0E31), CharClass::kMark);     // Thai mai han-akat (Mn)
  EXPECT_EQ(Classify(0x064E), CharClass::kMark);     // Arabic fatha (Mn)
  EXPECT_EQ(Classify(0x05B8), CharClass::kMark);     // Hebrew qamats (Mn)
  EXPECT_EQ(Classify(0x20DD), CharClass::kMark);     // combining enclosing circle (Me)
  EXPECT_EQ(Classify(0xFE0F), CharClass::kMark);     // variation selector-16 (Mn), as in emoji
  EXPECT_EQ(Classify(0x1F3FB), CharClass::kOther);   // emoji skin tone modifier (Sk), not a mark
  EXPECT_EQ(Classify(0x200D), CharClass::kOther);    // zero width joiner (Cf)
  EXPECT_EQ(Classify(0xE0100), CharClass::kMark);    // variation selector-17 (Mn, supplementary plane)
  EXPECT_EQ(Classify(0x0E32), CharClass::kLetter);   // Thai sara aa (Lo), not a mark
  EXPECT_EQ(Classify(0x0661), CharClass::kNumber);   // Arabic-Indic one (Nd)
  EXPECT_EQ(Classify(0x216B), CharClass::kNumber);   // Ⅻ (Nl)
  EXPECT_EQ(Classify(0x00BD), CharClass::kNumber);   // ½ (No)
  EXPECT_EQ(Classify(0x2460), CharClass::kNumber);   // ① (No)
  EXPECT_EQ(Classify(0x10400), CharClass::kLetter);  // Deseret capital long i
  EXPECT_EQ(Classify(0x1D7D8), CharClass::kNumber);  // mathematical double-struck zero
  EXPECT_EQ(Classify(0x20000), CharClass::kLetter);  // CJK extension B
  EXPECT_EQ(Classify(0x1F600), CharClass::kOther);   // 😀 (So)
  EXPECT_EQ(Classify(0xE000), CharClass::kOther);    // private use
  EXPECT_EQ(Classify(0x10FFFF), CharClass::kOther);
  EXPECT_EQ(Classify(utf8::kInvalidByteBase + 0xFF), CharClass::kOther);
}

TEST(UnicodeTest, WhiteSpaceIsTheUnicodeProperty) {
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F,
                      0x205F, 0x3000}) {
    EXPECT_TRUE(IsWhiteSpace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
  // Not White_Space, although Python's str.isspace() accepts 0x1C..0x1F and old Unicode had U+180E.
  for (char32_t cp : {0x1C, 0x1F, 0x200B, 0x180E, 0xFEFF, 0x0}) {
    EXPECT_FALSE(IsWhiteSpace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
}

bool InRanges(absl::Span<const CodePointRange> ranges, char32_t cp) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [cp](const CodePointRange& r) { return r.first <= cp && cp <= r.last; });
}

void ExpectSortedDisjoint(absl::Span<const CodePointRange> ranges, const char* name) {
  ASSERT_FALSE(ranges.empty()) << name;
  for (size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_LE(ranges[i].first, ranges[i].last) << name << " " << i;
    EXPECT_LE(ranges[i].last, 0x10FFFFu) << name << " " << i;
    if (i > 0) {
      EXPECT_LT(ranges[i - 1].last + 1, ranges[i].first) << name << " " << i << " (not merged)";
    }
  }
}

TEST(UnicodeTest, TablesAreSortedAndDisjoint) {
  ExpectSortedDisjoint(unicode_tables::Letters(), "letters");
  ExpectSortedDisjoint(unicode_tables::Numbers(), "numbers");
  ExpectSortedDisjoint(unicode_tables::Marks(), "marks");
  ExpectSortedDisjoint(unicode_tables::WhiteSpace(), "white space");
  ExpectSortedDisjoint(unicode_tables::NfcQcNotYes(), "nfc quick check");
  const auto ccc = unicode_tables::CombiningClasses();
  for (size_t i = 1; i < ccc.size(); ++i) EXPECT_LT(ccc[i - 1].last, ccc[i].first);
  const auto dec = unicode_tables::Decompositions();
  for (size_t i = 1; i < dec.size(); ++i) EXPECT_LT(dec[i - 1].code_point, dec[i].code_point);
  const auto comp = unicode_tables::Compositions();
  for (size_t i = 1; i < comp.size(); ++i) EXPECT_LT(comp[i - 1].key, comp[i].key);
  if (std::string(unicode_tables::kNfcUnicodeVersion) == "9.0.0") {
    EXPECT_EQ(comp.size(), 940u);  // primary composites
  }
}

// The fast paths (ASCII table, BMP table, binary search) against a plain scan of the tables, for every code point.
TEST(UnicodeTest, ClassifyAgreesWithTablesEverywhere) {
  const auto letters = unicode_tables::Letters();
  const auto numbers = unicode_tables::Numbers();
  const auto marks = unicode_tables::Marks();
  const auto spaces = unicode_tables::WhiteSpace();
  size_t li = 0, ni = 0, mi = 0, si = 0;
  int mismatches = 0;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    // Walk each table alongside cp instead of searching (keeps this test linear).
    while (li < letters.size() && letters[li].last < cp) ++li;
    while (ni < numbers.size() && numbers[ni].last < cp) ++ni;
    while (mi < marks.size() && marks[mi].last < cp) ++mi;
    while (si < spaces.size() && spaces[si].last < cp) ++si;
    CharClass want = CharClass::kOther;
    int tables = 0;  // the tables are disjoint: every code point is in at most one
    auto in = [&](bool hit, CharClass cls) {
      if (hit) {
        want = cls;
        ++tables;
      }
    };
    in(li < letters.size() && letters[li].first <= cp, CharClass::kLetter);
    in(ni < numbers.size() && numbers[ni].first <= cp, CharClass::kNumber);
    in(mi < marks.size() && marks[mi].first <= cp, CharClass::kMark);
    in(si < spaces.size() && spaces[si].first <= cp, CharClass::kWhiteSpace);
    if (tables > 1 && ++mismatches < 10) ADD_FAILURE() << "in two tables: " << std::hex << static_cast<uint32_t>(cp);
    if (Classify(cp) != want && ++mismatches < 10) {
      ADD_FAILURE() << "code point " << std::hex << static_cast<uint32_t>(cp);
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_TRUE(InRanges(letters, 0x4E00));
}

// Oniguruma inside HF tokenizers is the reference: its \p{L}, \p{N} and \s over every code point, as recorded by
// tests/fixtures/make_tokenizer.py, against octet's tables (from a different source, Python's unicodedata2). The
// fixture has no \p{M} (marks are "other" here); tests/worker/tokenizer/qwen3_5_tokenizer_test.py checks all four
// classes against Oniguruma directly.
TEST(UnicodeTest, ClassesMatchOnigurumaEverywhere) {
  const nlohmann::json onig = octet::testing::ReadJsonFixture("onig_classes.json");
  std::vector<CharClass> want(0x110000, CharClass::kOther);
  for (const auto& [key, cls] : {std::pair{"L", CharClass::kLetter}, std::pair{"N", CharClass::kNumber},
                                 std::pair{"s", CharClass::kWhiteSpace}}) {
    ASSERT_FALSE(onig[key].empty()) << key;
    for (const nlohmann::json& r : onig[key]) {
      for (uint32_t cp = r[0]; cp <= r[1].get<uint32_t>(); ++cp) want[cp] = cls;
    }
  }
  int mismatches = 0;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // not in UTF-8 text
    const CharClass got = Classify(cp) == CharClass::kMark ? CharClass::kOther : Classify(cp);
    if (got != want[cp] && ++mismatches < 10) {
      ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(cp) << ": octet " << static_cast<int>(got)
                    << ", Oniguruma " << static_cast<int>(want[cp]);
    }
  }
  EXPECT_EQ(mismatches, 0) << "tables from Unicode " << unicode_tables::kClassesUnicodeVersion
                           << ", fixture from tokenizers " << onig["tokenizers"];
}

}  // namespace
}  // namespace octet::unicode
