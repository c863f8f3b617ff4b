#include "worker/tokenizer/byte_level.h"

#include <string>

#include "gtest/gtest.h"

namespace octet::byte_level {
namespace {

TEST(ByteLevelTest, MatchesGpt2Alphabet) {
  EXPECT_EQ(ByteToChar('a'), U'a');
  EXPECT_EQ(ByteToChar('!'), U'!');
  EXPECT_EQ(ByteToChar(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(ByteToChar('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(ByteToChar(0), 0x100u);
  EXPECT_EQ(ByteToChar(0x7F), 0x121u);
  EXPECT_EQ(ByteToChar(0xA0), 0x142u);
  EXPECT_EQ(ByteToChar(0xAD), 0x143u);  // the last one
  EXPECT_EQ(ByteToChar(0xE9), 0xE9u);
  EXPECT_EQ(Encode(" hi\n"), "\xc4\xa0hi\xc4\x8a");
}

TEST(ByteLevelTest, EveryByteRoundTrips) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(Decode(Encode(all), &back));
  EXPECT_EQ(back, all);
}

TEST(ByteLevelTest, CharactersOutsideTheAlphabet) {
  std::string bytes;
  EXPECT_FALSE(Decode("a b", &bytes));           // U+0020 itself is not in the alphabet
  EXPECT_FALSE(Decode("\xe4\xb8\xad", &bytes));  // nor is 中
  EXPECT_EQ(DecodeOrKeep("<| a |>"), "<| a |>");
  EXPECT_EQ(DecodeOrKeep("\xc3\xa4"), "\xe4");  // 'ä' stands for byte 0xE4
}

}  // namespace
}  // namespace octet::byte_level
