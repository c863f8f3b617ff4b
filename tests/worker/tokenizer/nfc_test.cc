#include "worker/tokenizer/nfc.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/tokenizer/fixtures.h"

namespace octet::nfc {
namespace {

// JSON-escaped, for messages (ill-formed UTF-8 shows as U+FFFD rather than throwing).
std::string Escaped(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Every character with a canonical decomposition (decomposed and not), every combining mark, random mark
// sequences (with marks newer than Unicode 9.0 among them): NFC as HF tokenizers' normalizer computes it.
TEST(NfcTest, MatchesHuggingFace) {
  const nlohmann::json cases = octet::testing::ReadJsonFixture("nfc_cases.json");
  ASSERT_GT(cases.size(), 5000u);
  int failures = 0;
  for (const nlohmann::json& c : cases) {
    const std::string in = c[0];
    const std::string want = c[1];
    const std::string got = Normalize(in);
    if (got != want && ++failures <= 20) {
      ADD_FAILURE() << "NFC(" << Escaped(in) << ") = " << Escaped(got) << ", want " << Escaped(want);
    }
    // The quick check may say "maybe" for NFC text, never "yes" for text that NFC changes.
    if (IsQuickNfc(in) && in != want && ++failures <= 20) ADD_FAILURE() << "quick check passed " << Escaped(in);
  }
  EXPECT_EQ(failures, 0);
}

TEST(NfcTest, QuickCheck) {
  EXPECT_TRUE(IsQuickNfc(""));
  EXPECT_TRUE(IsQuickNfc("plain ascii text"));
  EXPECT_TRUE(IsQuickNfc("caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xea\xb0\x81"));  // café 中文 각
  EXPECT_FALSE(IsQuickNfc("cafe\xcc\x81"));                                      // e + U+0301
  EXPECT_FALSE(IsQuickNfc("\xe2\x84\xa6"));                                      // U+2126 OHM SIGN
  EXPECT_FALSE(IsQuickNfc("\xd7\xa9\xd7\x81\xd6\xbc"));  // shin, shin dot (ccc 24), dagesh (21): out of order
  EXPECT_TRUE(IsQuickNfc("\xd7\xa9\xd6\xbc\xd7\x81"));   // the same in canonical order
}

TEST(NfcTest, ComposesAndReorders) {
  EXPECT_EQ(Normalize("cafe\xcc\x81"), "caf\xc3\xa9");
  EXPECT_EQ(Normalize("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8"), "\xea\xb0\x81");  // jamo ᄀ ᅡ ᆨ → 각
  EXPECT_EQ(Normalize("\xe2\x84\xa6"), "\xce\xa9");                              // Ω sign → Ω
  // a + ogonek (220→202) + acute: reordered, then ą composes and the acute stays.
  EXPECT_EQ(Normalize("a\xcc\x81\xcc\xa8"), "\xc4\x85\xcc\x81");
  // A leading combining mark has nothing to compose with.
  const std::string acute = "\xcc\x81";
  EXPECT_EQ(Normalize(acute + "a"), acute + "a");
  // U+1DF6 (Unicode 10.0) is a starter to HF's Unicode 9.0 tables: it blocks e + U+0301.
  EXPECT_EQ(Normalize("e\xe1\xb7\xb6" + acute), "e\xe1\xb7\xb6" + acute);
}

TEST(NfcTest, IllFormedBytesPassThrough) {
  EXPECT_EQ(Normalize("x\xff\xcc\x81y"), "x\xff\xcc\x81y");
  EXPECT_EQ(Normalize("e\xcc\x81\xe4\xb8"), "\xc3\xa9\xe4\xb8");
}

TEST(NfcTest, CombiningClass) {
  EXPECT_EQ(CombiningClass(U'a'), 0);
  EXPECT_EQ(CombiningClass(0x0301), 230);
  EXPECT_EQ(CombiningClass(0x0328), 202);
  EXPECT_EQ(CombiningClass(0x05B0), 10);
  EXPECT_EQ(CombiningClass(0x094D), 9);
  EXPECT_EQ(CombiningClass(0x1D165), 216);
  EXPECT_EQ(CombiningClass(0x4E2D), 0);
}

}  // namespace
}  // namespace octet::nfc
