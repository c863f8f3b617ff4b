// Tokenizer against Hugging Face `tokenizers`: ids and decodes recorded by tests/fixtures/make_tokenizer.py.
#include "worker/tokenizer/tokenizer.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/tokenizer/fixtures.h"
#include "worker/tokenizer/utf8.h"

namespace octet {
namespace {

using ::octet::testing::LoadFixtureTokenizer;
using ::octet::testing::ReadFixture;
using ::octet::testing::ReadJsonFixture;

// JSON-escaped, for messages (ill-formed UTF-8 shows as U+FFFD rather than throwing).
std::string Escaped(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void ExpectMatchesHf(const std::string& tokenizer_name, const std::string& cases_name) {
  const Tokenizer& tok = LoadFixtureTokenizer(tokenizer_name);
  const nlohmann::json cases = ReadJsonFixture(cases_name);
  ASSERT_GT(cases.size(), 100u);
  for (const nlohmann::json& c : cases) {
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const std::vector<int32_t> ids = tok.Encode(text, /*add_special_tokens=*/false);
    EXPECT_EQ(ids, want) << "text " << Escaped(text);
    EXPECT_EQ(tok.Encode(text, /*add_special_tokens=*/true), c["ids_with_special"].get<std::vector<int32_t>>())
        << "text " << Escaped(text);
    // HF's decode is lossy UTF-8; octet's is the raw bytes.
    EXPECT_EQ(utf8::Lossy(tok.Decode(want)), c["decoded"].get<std::string>()) << "text " << Escaped(text);
    EXPECT_EQ(utf8::Lossy(tok.Decode(want, /*skip_special_tokens=*/true)), c["decoded_skip_special"].get<std::string>())
        << "text " << Escaped(text);
  }
}

TEST(TokenizerTest, QwenStyleMatchesHuggingFace) { ExpectMatchesHf("tokenizer.json", "cases.json"); }

TEST(TokenizerTest, Gpt2StyleMatchesHuggingFace) { ExpectMatchesHf("tokenizer_gpt2.json", "cases_gpt2.json"); }

TEST(TokenizerTest, CorpusMatchesHuggingFace) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  const std::string text = ReadFixture("corpus.txt");
  const auto want = ReadJsonFixture("corpus_ids.json").get<std::vector<int32_t>>();
  ASSERT_GT(text.size(), 100000u);
  const std::vector<int32_t> ids = tok.Encode(text, /*add_special_tokens=*/false);
  ASSERT_EQ(ids.size(), want.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(ids[i], want[i]) << "first difference at token " << i;
  }
}

TEST(TokenizerTest, DecodeRoundTripsNfcText) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  for (const std::string text : {"Hello world", "  a\tb\n\r\n", "你好，世界！", "👨‍👩‍👧‍👦 🇺🇸",
                                 "<|im_start|>x<|im_end|>", "\xff\xfe invalid \xc3", "مرحبا"}) {
    EXPECT_EQ(tok.Decode(tok.Encode(text)), text) << Escaped(text);
  }
  // NFC changes NFD input, so the round trip gives the composed form.
  EXPECT_EQ(tok.Decode(tok.Encode("re\u0301sume\u0301")), "r\u00e9sum\u00e9");
}

TEST(TokenizerTest, IllFormedInputBytesAreKept) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  const std::string text = "ok\xe4\xb8 \x80\xff end\xf0\x9f";
  EXPECT_EQ(tok.Decode(tok.Encode(text)), text);
}

TEST(TokenizerTest, SpecialTokensAreMatchedWholeAndSkippable) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  const std::optional<int32_t> start = tok.TokenToId("<|im_start|>");
  const std::optional<int32_t> end = tok.TokenToId("<|im_end|>");
  const std::optional<int32_t> think = tok.TokenToId("<think>");
  ASSERT_TRUE(start && end && think);
  EXPECT_EQ(*start, 2001);  // right after the 2000 BPE tokens, as Qwen's follow its vocabulary
  EXPECT_TRUE(tok.IsSpecial(*start));
  EXPECT_FALSE(tok.IsSpecial(*think));  // an added token, but not special
  EXPECT_FALSE(tok.IsSpecial(0));
  EXPECT_FALSE(tok.IsSpecial(-1));
  EXPECT_FALSE(tok.IsSpecial(1 << 20));

  const std::vector<int32_t> ids = tok.Encode("<|im_start|>user<|im_end|><think>");
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), *start);
  EXPECT_EQ(ids[ids.size() - 2], *end);
  EXPECT_EQ(ids.back(), *think);
  EXPECT_EQ(tok.Decode(ids, /*skip_special_tokens=*/true), "user<think>");
  EXPECT_EQ(tok.Decode(ids), "<|im_start|>user<|im_end|><think>");
  EXPECT_EQ(tok.TokenBytes(*end), "<|im_end|>");
}

TEST(TokenizerTest, VocabularyAccessors) {
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 2006);                               // 2000 BPE tokens + 3 special + 3 other added tokens
  const std::optional<int32_t> space = tok.TokenToId("\xc4\xa0");  // "Ġ": byte-level spelling of ' '
  ASSERT_TRUE(space.has_value());
  EXPECT_EQ(tok.TokenBytes(*space), " ");
  EXPECT_FALSE(tok.TokenToId("definitely not a token").has_value());
  EXPECT_EQ(tok.TokenBytes(-1), "");
  EXPECT_EQ(tok.TokenBytes(tok.vocab_size()), "");
  EXPECT_EQ(tok.Decode({-5, 99999, *space}), " ");  // unknown ids are skipped
  const Tokenizer& gpt2 = LoadFixtureTokenizer("tokenizer_gpt2.json");
  EXPECT_EQ(gpt2.vocab_size(), 604);
}

TEST(TokenizerTest, AddSpecialTokensAppliesTemplate) {
  const Tokenizer& gpt2 = LoadFixtureTokenizer("tokenizer_gpt2.json");
  const std::vector<int32_t> plain = gpt2.Encode("hi", /*add_special_tokens=*/false);
  std::vector<int32_t> want = {*gpt2.TokenToId("<|bos|>")};
  want.insert(want.end(), plain.begin(), plain.end());
  want.push_back(*gpt2.TokenToId("<|endoftext|>"));
  EXPECT_EQ(gpt2.Encode("hi", /*add_special_tokens=*/true), want);
  // Qwen has no template: the flag changes nothing.
  const Tokenizer& qwen = LoadFixtureTokenizer("tokenizer.json");
  EXPECT_EQ(qwen.Encode("hi", true), qwen.Encode("hi", false));
}

TEST(TokenizerTest, LegacyMergeStringsGiveTheSameIds) {
  nlohmann::json j = ReadJsonFixture("tokenizer.json");
  for (nlohmann::json& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  absl::StatusOr<std::unique_ptr<Tokenizer>> legacy = Tokenizer::FromJson(j.dump());
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  const Tokenizer& tok = LoadFixtureTokenizer("tokenizer.json");
  const std::string text = ReadFixture("corpus.txt").substr(0, 20000);
  EXPECT_EQ((*legacy)->Encode(text), tok.Encode(text));
}

TEST(TokenizerTest, FromFileReportsMissingFile) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromFile("tests/fixtures/tokenizer/no_such_file.json");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
}

TEST(TokenizerTest, ConcurrentEncodeGivesTheSameIds) {
  // A fresh tokenizer, so the threads fill its word cache while racing on it.
  absl::StatusOr<std::unique_ptr<Tokenizer>> fresh = Tokenizer::FromFile("tests/fixtures/tokenizer/tokenizer.json");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const Tokenizer& reference = LoadFixtureTokenizer("tokenizer.json");
  const std::string corpus = ReadFixture("corpus.txt");
  std::vector<std::string> chunks;
  for (size_t i = 0; i < corpus.size(); i += 1500) chunks.push_back(corpus.substr(i, 1500));
  std::vector<std::vector<int32_t>> want;
  for (const std::string& chunk : chunks) want.push_back(reference.Encode(chunk));

  constexpr int kThreads = 8;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < chunks.size(); ++k) {
        const size_t i = (k + t * chunks.size() / kThreads) % chunks.size();  // each thread starts elsewhere
        if ((*fresh)->Encode(chunks[i]) != want[i]) ++mismatches[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace octet
