#include "worker/tokenizer/incremental_detokenizer.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/tokenizer/fixtures.h"
#include "worker/tokenizer/byte_level.h"
#include "worker/tokenizer/utf8.h"

namespace octet {
namespace {

using ::octet::testing::LoadFixtureTokenizer;

constexpr char kFffd[] = "\xef\xbf\xbd";

struct Streamed {
  std::string text;
  int held_back = 0;  // pushes that returned nothing although the token had bytes
};

// Streams `ids`, checking that every piece is valid UTF-8.
Streamed Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special) {
  IncrementalDetokenizer detok(tok, skip_special);
  Streamed s;
  for (const int32_t id : ids) {
    const std::string piece = detok.Push(id);
    EXPECT_TRUE(utf8::IsValid(piece)) << "id " << id;
    if (piece.empty() && !tok.TokenBytes(id).empty()) ++s.held_back;
    s.text += piece;
  }
  const std::string rest = detok.Flush();
  EXPECT_TRUE(utf8::IsValid(rest));
  s.text += rest;
  return s;
}

TEST(IncrementalDetokenizerTest, ConcatenatesToTheFullDecode) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  const nlohmann::json cases = octet::testing::ReadJsonFixture("cases.json");
  int held_back = 0;
  for (const nlohmann::json& c : cases) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    for (const bool skip : {false, true}) {
      const Streamed s = Stream(tok, ids, skip);
      EXPECT_EQ(s.text, utf8::Lossy(tok.Decode(ids, skip))) << c["text"].dump();
      held_back += s.held_back;
    }
  }
  // CJK and emoji are split across several byte tokens by this small vocabulary: the test must exercise that.
  EXPECT_GT(held_back, 50);
}

TEST(IncrementalDetokenizerTest, HoldsBackSplitCharacters) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  // 😀 is F0 9F 98 80; as single-byte tokens it completes only with the fourth.
  std::vector<int32_t> ids;
  for (const uint8_t byte : {0xF0, 0x9F, 0x98, 0x80}) {
    std::string token;  // the byte-level spelling of the byte
    utf8::AppendCodePoint(byte_level::ByteToChar(byte), &token);
    const std::optional<int32_t> id = tok.TokenToId(token);
    ASSERT_TRUE(id.has_value()) << token;
    ids.push_back(*id);
  }
  ASSERT_EQ(tok.Decode(ids), "\xf0\x9f\x98\x80");
  IncrementalDetokenizer detok(tok, /*skip_special_tokens=*/false);
  EXPECT_EQ(detok.Push(ids[0]), "");
  EXPECT_EQ(detok.Push(ids[1]), "");
  EXPECT_EQ(detok.Push(ids[2]), "");
  EXPECT_EQ(detok.Push(ids[3]), "\xf0\x9f\x98\x80");
  EXPECT_EQ(detok.Flush(), "");

  // A sequence that ends inside a character: the rest comes out as U+FFFD.
  EXPECT_EQ(detok.Push(ids[0]), "");
  EXPECT_EQ(detok.Push(ids[1]), "");
  EXPECT_EQ(detok.Flush(), kFffd);

  // A character that can no longer complete is replaced as soon as that is known.
  const int32_t a = *tok.TokenToId("A");
  EXPECT_EQ(detok.Push(ids[0]), "");
  EXPECT_EQ(detok.Push(a), std::string(kFffd) + "A");
}

TEST(IncrementalDetokenizerTest, SpecialTokens) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  const int32_t end = *tok.TokenToId("<|im_end|>");
  IncrementalDetokenizer keep(tok, /*skip_special_tokens=*/false);
  EXPECT_EQ(keep.Push(end), "<|im_end|>");
  IncrementalDetokenizer skip(tok, /*skip_special_tokens=*/true);
  EXPECT_EQ(skip.Push(end), "");
  EXPECT_EQ(skip.Push(*tok.TokenToId("<think>")), "<think>");  // added but not special
  EXPECT_EQ(skip.Push(-1), "");                                // unknown ids are skipped
}

TEST(IncrementalDetokenizerTest, RandomIdStreams) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  std::mt19937 rng(123);
  std::uniform_int_distribution<int32_t> id(-2, tok.vocab_size() + 1);
  for (int round = 0; round < 300; ++round) {
    std::vector<int32_t> ids(1 + round % 40);
    for (int32_t& x : ids) x = id(rng);
    const bool skip = round % 2 == 0;
    EXPECT_EQ(Stream(tok, ids, skip).text, utf8::Lossy(tok.Decode(ids, skip))) << "round " << round;
  }
}

}  // namespace
}  // namespace octet
