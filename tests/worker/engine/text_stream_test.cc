#include "worker/engine/text_stream.h"
#include "tests/worker/tokenizer/fixtures.h"

#include <array>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {
namespace {

// The small Qwen-style test tokenizer, loaded once (tests/worker/tokenizer/fixtures.h).
const Tokenizer& FixtureTokenizer() { return testing::LoadFixtureTokenizer("tokenizer.json"); }

// Strict UTF-8 validation (no overlongs, surrogates or code points above U+10FFFF), written independently of the
// tokenizer's own utf8 helpers.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char t = static_cast<unsigned char>(s[i + k]);
      if ((t & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (t & 0x3F);
    }
    static constexpr std::array<uint32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// One single-byte token per byte of text (byte-level BPE has a token for every byte), so that multi-byte
// characters and stop strings are cut at every possible place.
std::vector<int32_t> ByteTokens(std::string_view text) {
  static const std::array<int32_t, 256> byte_to_id = [] {
    std::array<int32_t, 256> ids;
    ids.fill(-1);
    const Tokenizer& t = FixtureTokenizer();
    for (int32_t id = 0; id < t.vocab_size(); ++id) {
      const std::string_view bytes = t.TokenBytes(id);
      if (bytes.size() == 1 && !t.IsSpecial(id)) ids[static_cast<unsigned char>(bytes[0])] = id;
    }
    return ids;
  }();
  std::vector<int32_t> ids;
  for (char c : text) {
    const int32_t id = byte_to_id[static_cast<unsigned char>(c)];
    EXPECT_GE(id, 0) << "no single-byte token for byte " << static_cast<int>(static_cast<unsigned char>(c));
    ids.push_back(id);
  }
  return ids;
}

// Id of the token whose bytes are exactly `bytes`, or -1.
int32_t TokenWithBytes(std::string_view bytes) {
  const Tokenizer& t = FixtureTokenizer();
  for (int32_t id = 0; id < t.vocab_size(); ++id) {
    if (t.TokenBytes(id) == bytes) return id;
  }
  return -1;
}

struct StreamResult {
  std::vector<std::string> pieces;  // every Take(false) after each Push, then Take(true)
  std::string text;                 // the pieces concatenated
  int stop_at = -1;                 // index of the token on which Push returned true
};

// Feeds tokens as the engine does: Push, then Take(false) after each token, Take(true) once at the end (or as soon
// as a stop string completes).
StreamResult Stream(const std::vector<int32_t>& ids, const std::vector<std::string>& stop) {
  TextStream stream(FixtureTokenizer(), stop);
  StreamResult r;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool stopped = stream.Push(ids[i]);
    if (stopped) {
      r.stop_at = static_cast<int>(i);
      break;
    }
    r.pieces.push_back(stream.Take(/*final=*/false));
  }
  r.pieces.push_back(stream.Take(/*final=*/true));
  for (const std::string& p : r.pieces) r.text += p;
  return r;
}

const std::vector<std::string>& MultilingualTexts() {
  static const auto* texts = new std::vector<std::string>{
      "The quick brown fox jumps over the lazy dog. It's 3:45 PM and we're late!",
      "Größere Äpfel schmecken süßer, sagte der Bäcker in Zürich.",
      "我们今天去北京大学参观，然后在食堂吃午饭。人工智能正在改变世界。",
      "東京は日本の首都です。ひらがなとカタカナと漢字を使います。",
      "Emoji: 😀 😂 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇺🇸 ❤️ 🔥 ✨ 🚀",
      "Mixed: a😀b中c\xF0\x9F\x9A\x80"
      "d é 한국어 ∑ ≈ ½",
  };
  return *texts;
}

TEST(TextStreamTest, WithoutStopStringsTheStreamEqualsDecode) {
  const Tokenizer& t = FixtureTokenizer();
  for (const std::string& text : MultilingualTexts()) {
    for (const std::vector<int32_t>& ids : {t.Encode(text), ByteTokens(text)}) {
      StreamResult r = Stream(ids, {});
      EXPECT_EQ(r.stop_at, -1) << text;
      EXPECT_EQ(r.text, t.Decode(ids)) << text;
      EXPECT_EQ(r.text, text);
    }
  }
}

TEST(TextStreamTest, WithoutStopStringsAsciiIsReleasedAtOnce) {
  const Tokenizer& t = FixtureTokenizer();
  const std::vector<int32_t> ids = t.Encode("Hello world, this streams token by token.");
  TextStream stream(t, {});
  for (int32_t id : ids) {
    EXPECT_FALSE(stream.Push(id));
    EXPECT_EQ(stream.Take(/*final=*/false), t.TokenBytes(id));
  }
  EXPECT_EQ(stream.Take(/*final=*/true), "");
}

TEST(TextStreamTest, EmptyStopStringsAreIgnored) {
  const Tokenizer& t = FixtureTokenizer();
  const std::string text = "nothing stops this";
  StreamResult r = Stream(t.Encode(text), {""});
  EXPECT_EQ(r.stop_at, -1);
  EXPECT_EQ(r.text, text);
  // And nothing is held back for them.
  TextStream stream(t, {""});
  for (int32_t id : t.Encode(text)) {
    stream.Push(id);
    EXPECT_EQ(stream.Take(/*final=*/false), t.TokenBytes(id));
  }
}

// Index of the first token after which the decoded text contains `needle`, and the byte offset where the text of
// that token starts; -1 if never.
std::pair<int, size_t> TokenCompleting(const std::vector<int32_t>& ids, const std::string& needle) {
  const Tokenizer& t = FixtureTokenizer();
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string upto = t.Decode(std::span<const int32_t>(ids.data(), i + 1));
    if (upto.find(needle) != std::string::npos) {
      return {static_cast<int>(i), t.Decode(std::span<const int32_t>(ids.data(), i)).size()};
    }
  }
  return {-1, 0};
}

TEST(TextStreamTest, StopStringSpanningTokensTruncatesExactlyBeforeIt) {
  const Tokenizer& t = FixtureTokenizer();
  const std::string text = "The quick brown fox jumps over the lazy dog. It's 3:45 PM and we're late!";
  // Whole words, a stop string ending inside a token ("fox ju" in " jumps"), punctuation and digits.
  for (const std::string stop : {"fox jumps", "fox ju", "lazy dog.", "3:45 PM", "n fox"}) {
    const std::vector<int32_t> ids = t.Encode(text);
    const auto [k, token_start] = TokenCompleting(ids, stop);
    ASSERT_GE(k, 0) << stop;
    const size_t at = text.find(stop);
    ASSERT_LT(at, token_start) << "\"" << stop << "\" must span several tokens for this test";

    StreamResult r = Stream(ids, {stop});
    EXPECT_EQ(r.stop_at, k) << stop;
    EXPECT_EQ(r.text, text.substr(0, at)) << stop;
  }
}

TEST(TextStreamTest, StopStringAcrossSingleByteTokens) {
  const std::string text = "hello STOP world";
  StreamResult r = Stream(ByteTokens(text), {"STOP"});
  EXPECT_EQ(r.stop_at, static_cast<int>(text.find("STOP") + 3));  // the 'P'
  EXPECT_EQ(r.text, "hello ");
}

TEST(TextStreamTest, FirstCompletedStopStringWins) {
  const Tokenizer& t = FixtureTokenizer();
  const std::string text = "The quick brown fox jumps over the lazy dog.";
  StreamResult r = Stream(t.Encode(text), {"lazy", "brown", "zzz"});
  EXPECT_EQ(r.text, "The quick ");
  // Two stop strings completed by the same token: the text ends before the one that starts first.
  StreamResult same = Stream(ByteTokens("abcdefg"), {"cde", "bcde"});
  EXPECT_EQ(same.stop_at, 4);
  EXPECT_EQ(same.text, "a");
}

TEST(TextStreamTest, StopStringAtTheVeryStart) {
  StreamResult r = Stream(ByteTokens("STOP and more"), {"STOP"});
  EXPECT_EQ(r.stop_at, 3);
  EXPECT_EQ(r.text, "");
}

// After every token: nothing that could still begin a stop string has been released, and no more than
// (longest stop string - 1) bytes are held back.
TEST(TextStreamTest, PossibleStopPrefixesAreHeldBackAndReleasedWhenTheyCannotMatch) {
  const Tokenizer& t = FixtureTokenizer();
  const std::vector<std::string> stops = {"STOP", "<end>"};
  const size_t max_len = 5;
  const std::string text = "ab ST STO STOx <en <e xyz S STOQ <end!> tail text here";
  const std::vector<int32_t> ids = ByteTokens(text);
  TextStream stream(t, stops);
  std::string released;
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_FALSE(stream.Push(ids[i])) << "at byte " << i;
    released += stream.Take(/*final=*/false);
    const std::string so_far = text.substr(0, i + 1);
    ASSERT_EQ(so_far.compare(0, released.size(), released), 0) << "released text is not a prefix: " << released;
    for (const std::string& stop : stops) {
      for (size_t k = 1; k < stop.size(); ++k) {
        if (so_far.size() >= k && so_far.compare(so_far.size() - k, k, stop, 0, k) == 0) {
          EXPECT_LE(released.size(), so_far.size() - k) << "released \"" << released << "\" although \""
                                                        << stop.substr(0, k) << "\" may begin \"" << stop << "\"";
        }
      }
    }
    EXPECT_GE(released.size() + (max_len - 1), so_far.size()) << "holds back too much after \"" << so_far << "\"";
  }
  released += stream.Take(/*final=*/true);
  EXPECT_EQ(released, text);
}

TEST(TextStreamTest, HeldBackPrefixIsDroppedWhenTheStopStringCompletes) {
  const Tokenizer& t = FixtureTokenizer();
  TextStream stream(t, {"STOP"});
  std::string released;
  for (int32_t id : ByteTokens("abcdefgh ST")) {
    ASSERT_FALSE(stream.Push(id));
    released += stream.Take(false);
  }
  EXPECT_EQ(released.find('S'), std::string::npos) << released;
  const std::vector<int32_t> rest = ByteTokens("OP more");
  EXPECT_FALSE(stream.Push(rest[0]));
  released += stream.Take(false);
  EXPECT_TRUE(stream.Push(rest[1]));
  released += stream.Take(true);
  EXPECT_EQ(released, "abcdefgh ");
}

TEST(TextStreamTest, MultiByteCharactersAreNeverSplitAcrossPieces) {
  const Tokenizer& t = FixtureTokenizer();
  // Stop strings that never match but force hold-backs of 1, 3, 6 and 10 bytes (cutting into 2-, 3- and 4-byte
  // characters), and multi-byte ones.
  const std::vector<std::vector<std::string>> stop_sets = {
      {}, {"Q@"}, {"Q@Q@"}, {"Q@Q@Q@Q"}, {"Q@Q@Q@Q@Q@Q"}, {"北京X"}, {"😀😀"}, {"é!", "🚀?"},
  };
  for (const std::string& text : MultilingualTexts()) {
    for (const std::vector<int32_t>& ids : {t.Encode(text), ByteTokens(text)}) {
      for (const std::vector<std::string>& stops : stop_sets) {
        StreamResult r = Stream(ids, stops);
        EXPECT_EQ(r.stop_at, -1);
        for (size_t i = 0; i < r.pieces.size(); ++i) {
          EXPECT_TRUE(IsValidUtf8(r.pieces[i]))
              << "piece " << i << " of \"" << text << "\" with " << stops.size() << " stop strings";
        }
        EXPECT_EQ(r.text, text);
      }
    }
  }
}

TEST(TextStreamTest, MultiByteStopString) {
  const Tokenizer& t = FixtureTokenizer();
  const std::string text = "我们今天去北京大学参观，然后在食堂吃午饭。";
  for (const std::vector<int32_t>& ids : {t.Encode(text), ByteTokens(text)}) {
    StreamResult r = Stream(ids, {"北京"});
    EXPECT_GE(r.stop_at, 0);
    EXPECT_EQ(r.text, "我们今天去");
    for (const std::string& piece : r.pieces) EXPECT_TRUE(IsValidUtf8(piece));
  }
  StreamResult emoji = Stream(ByteTokens("go 🚀🚀 now"), {"🚀"});
  EXPECT_EQ(emoji.stop_at, 6);  // the 4th byte of the first rocket
  EXPECT_EQ(emoji.text, "go ");
}

TEST(TextStreamTest, FinalTakeReleasesEverythingHeldBack) {
  const Tokenizer& t = FixtureTokenizer();
  TextStream stream(t, {"STOP!"});
  std::string released;
  for (int32_t id : ByteTokens("end with ST")) {
    stream.Push(id);
    released += stream.Take(false);
  }
  EXPECT_NE(released, "end with ST");
  released += stream.Take(true);
  EXPECT_EQ(released, "end with ST");
}

// When a stop string completes on a token that also begins an incomplete UTF-8 character (fixture token " \xC3"),
// the byte held inside the detokenizer comes after the stop string and must not leak out as U+FFFD.
TEST(TextStreamTest, NothingAfterTheStopStringLeaksOutOfTheDetokenizer) {
  const int32_t space_lead = TokenWithBytes(" \xC3");
  ASSERT_GE(space_lead, 0) << "fixture has no token \" \\xC3\"";
  const int32_t a = ByteTokens("a")[0];
  StreamResult r = Stream({a, space_lead}, {"a "});
  EXPECT_EQ(r.stop_at, 1);
  EXPECT_EQ(r.text, "");
  const int32_t x = ByteTokens("x")[0];
  StreamResult r2 = Stream({x, x, a, space_lead}, {"a "});
  EXPECT_EQ(r2.stop_at, 3);
  EXPECT_EQ(r2.text, "xx");
}

}  // namespace
}  // namespace octet
