#include "worker/tokenizer/bpe.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/worker/tokenizer/fixtures.h"
#include "worker/tokenizer/pre_tokenizer.h"
#include "worker/tokenizer/tokenizer_config.h"

namespace octet {
namespace {

using Vocab = std::vector<std::pair<std::string, int32_t>>;
using Merges = std::vector<std::pair<std::string, std::string>>;
using Ids = std::vector<int32_t>;

Ids Encode(const BpeModel& m, std::string_view word) {
  Ids ids;
  m.Encode(word, &ids);
  return ids;
}

TEST(BpeTest, MergesByRankLeftmostFirst) {
  const Vocab vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"aa", 5}, {"abc", 6}};
  // "b c" outranks "a b": "abc" → a + bc, and no merge of (a, bc) exists.
  auto m = BpeModel::Create(vocab, Merges{{"b", "c"}, {"a", "b"}, {"a", "a"}}, {});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(Encode(**m, "abc"), Ids({0, 4}));
  EXPECT_EQ(Encode(**m, "ab"), Ids({3}));
  EXPECT_EQ(Encode(**m, "aaa"), Ids({5, 0}));  // equal ranks: the leftmost pair merges first
  EXPECT_EQ(Encode(**m, "abab"), Ids({3, 3}));
  EXPECT_EQ(Encode(**m, ""), Ids());
  EXPECT_EQ(Encode(**m, "abc"), Ids({0, 4}));  // again, from the cache
}

TEST(BpeTest, UnknownBytesAreDroppedOrUnk) {
  const Vocab vocab = {{"a", 0}, {"<unk>", 1}};
  auto dropped = BpeModel::Create(vocab, {}, {});
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(Encode(**dropped, "axxa"), Ids({0, 0}));
  BpeOptions unk;
  unk.unk_id = 1;
  auto with_unk = BpeModel::Create(vocab, {}, unk);
  EXPECT_EQ(Encode(**with_unk, "axxa"), Ids({0, 1, 1, 0}));
  unk.fuse_unk = true;
  auto fused = BpeModel::Create(vocab, {}, unk);
  EXPECT_EQ(Encode(**fused, "axxa"), Ids({0, 1, 0}));
}

TEST(BpeTest, IgnoreMergesTakesWholeWords) {
  // "abc" is in the vocabulary but no merge builds it.
  const Vocab vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}};
  BpeOptions options;
  auto plain = BpeModel::Create(vocab, Merges{{"a", "b"}}, options);
  EXPECT_EQ(Encode(**plain, "abc"), Ids({3, 2}));
  options.ignore_merges = true;
  auto whole = BpeModel::Create(vocab, Merges{{"a", "b"}}, options);
  EXPECT_EQ(Encode(**whole, "abc"), Ids({4}));
}

TEST(BpeTest, WorksOnRawBytes) {
  // "Ġ" is the byte-level spelling of ' '; "Ġa" merges to one token.
  const Vocab vocab = {{"a", 0}, {"\xc4\xa0", 1}, {"\xc4\xa0\x61", 2}};  // a, Ġ, Ġa
  auto m = BpeModel::Create(vocab, Merges{{"\xc4\xa0", "a"}}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(Encode(**m, " a"), Ids({2}));
  EXPECT_EQ(Encode(**m, "a "), Ids({0, 1}));
}

TEST(BpeTest, MergeOfUnknownTokenIsAnError) {
  const Vocab vocab = {{"a", 0}, {"b", 1}};
  auto m = BpeModel::Create(vocab, Merges{{"a", "b"}}, {});  // "ab" is missing
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("model.merges[0]"), std::string::npos) << m.status();
  auto m2 = BpeModel::Create(vocab, Merges{{"a", "x"}}, {});
  EXPECT_NE(m2.status().message().find("\"x\""), std::string::npos) << m2.status();
}

// The linear-scan loop (short words) and the heap loop (long words) must agree on every word of the corpus.
TEST(BpeTest, MergeLoopsAgreeOnCorpus) {
  absl::StatusOr<TokenizerConfig> config = ParseTokenizerJson(octet::testing::ReadFixture("tokenizer.json"));
  ASSERT_TRUE(config.ok()) << config.status();
  auto model = BpeModel::Create(config->vocab, config->merges, config->bpe);
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string corpus = octet::testing::ReadFixture("corpus.txt");
  std::vector<std::string_view> words;
  SplitText(SplitPattern::kQwen2, corpus, &words);
  ASSERT_GT(words.size(), 10000u);
  int differences = 0;
  for (std::string_view w : words) {
    Ids linear, heap;
    (*model)->EncodeUncached(w, &linear, BpeModel::MergeLoop::kAuto);
    (*model)->EncodeUncached(w, &heap, BpeModel::MergeLoop::kHeap);
    if (linear != heap && ++differences < 10) ADD_FAILURE() << "word \"" << w << "\"";
  }
  EXPECT_EQ(differences, 0);
}

}  // namespace
}  // namespace octet
