#include "worker/tokenizer/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace octet::utf8 {
namespace {

constexpr char kFffd[] = "\xef\xbf\xbd";

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(Utf8Test, DecodesWellFormedSequences) {
  const std::string text = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80";  // a é 中 😀
  char32_t cp;
  EXPECT_EQ(DecodeAt(text, 0, &cp), 1);
  EXPECT_EQ(cp, U'a');
  EXPECT_EQ(DecodeAt(text, 1, &cp), 2);
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(DecodeAt(text, 3, &cp), 3);
  EXPECT_EQ(cp, 0x4E2Du);
  EXPECT_EQ(DecodeAt(text, 6, &cp), 4);
  EXPECT_EQ(cp, 0x1F600u);
}

TEST(Utf8Test, IllFormedBytesDecodeOneByOne) {
  for (const std::string bad : {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe4\xb8", "\xff"}) {
    char32_t cp;
    EXPECT_EQ(DecodeAt(bad, 0, &cp), 1);
    EXPECT_EQ(cp, kInvalidByteBase + static_cast<unsigned char>(bad[0]));
    std::string round_trip;
    AppendCodePoint(cp, &round_trip);
    EXPECT_EQ(round_trip, bad.substr(0, 1));
  }
}

TEST(Utf8Test, LossyReplacesMaximalSubpartsLikePython) {
  // Expected values from Python's bytes.decode("utf-8", "replace").
  EXPECT_EQ(Lossy("\xe4\xb8\x41"), std::string(kFffd) + "A");
  EXPECT_EQ(Lossy("\xf0\x80\x80"), Repeat(kFffd, 3));
  EXPECT_EQ(Lossy("\xed\xa0\x80"), Repeat(kFffd, 3));
  EXPECT_EQ(Lossy("\xf4\x90\x80\x80"), Repeat(kFffd, 4));
  EXPECT_EQ(Lossy("\xc0\xaf"), Repeat(kFffd, 2));
  EXPECT_EQ(Lossy("\xe2\x82"), kFffd);
  EXPECT_EQ(Lossy("\xf0\x9f\x98"), kFffd);
  EXPECT_EQ(Lossy("a\x80\x62"), std::string("a") + kFffd + "b");
  EXPECT_EQ(Lossy("\xf0\x9f\x98\x80\xff"), std::string("\xf0\x9f\x98\x80") + kFffd);
  EXPECT_EQ(Lossy("\xe0\x9f\x80"), Repeat(kFffd, 3));
  EXPECT_EQ(Lossy("plain \xc3\xa9"), "plain \xc3\xa9");
}

TEST(Utf8Test, AppendLossyHoldsBackTruncatedTail) {
  std::string out;
  EXPECT_EQ(AppendLossy("ab\xf0\x9f\x98", /*at_end=*/false, &out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  // An ill-formed sequence is not held back: no later byte can repair it.
  EXPECT_EQ(AppendLossy("ab\xf0\x63", /*at_end=*/false, &out), 4u);
  EXPECT_EQ(out, std::string("ab") + kFffd + "c");
  out.clear();
  EXPECT_EQ(AppendLossy("\xe4\xb8", /*at_end=*/true, &out), 2u);
  EXPECT_EQ(out, kFffd);
}

TEST(Utf8Test, IsValid) {
  EXPECT_TRUE(IsValid(""));
  EXPECT_TRUE(IsValid("h\xc3\xa9llo \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValid("\xe4\xb8"));
  EXPECT_FALSE(IsValid("\xed\xa0\x80"));  // a surrogate
  EXPECT_FALSE(IsValid("\xc1\xbf"));      // overlong
}

TEST(Utf8Test, PreviousCharStart) {
  const std::string text = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\x80";
  EXPECT_EQ(PreviousCharStart(text, 1), 0u);
  EXPECT_EQ(PreviousCharStart(text, 3), 1u);
  EXPECT_EQ(PreviousCharStart(text, 6), 3u);
  EXPECT_EQ(PreviousCharStart(text, 10), 6u);
  EXPECT_EQ(PreviousCharStart(text, 11), 10u);  // a stray continuation byte is its own unit
}

}  // namespace
}  // namespace octet::utf8
