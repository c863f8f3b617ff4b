#include "worker/tokenizer/word_cache.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace octet {
namespace {

TEST(WordCacheTest, HitsAppendAndMissesDoNot) {
  WordCache cache(100);
  std::vector<int32_t> ids = {7};
  EXPECT_FALSE(cache.Lookup("hello", &ids));
  EXPECT_EQ(ids, std::vector<int32_t>({7}));
  const std::vector<int32_t> hello = {1, 2, 3, 4, 5, 6};
  cache.Insert("hello", hello);
  EXPECT_TRUE(cache.Lookup("hello", &ids));
  EXPECT_EQ(ids, std::vector<int32_t>({7, 1, 2, 3, 4, 5, 6}));
  EXPECT_FALSE(cache.Lookup("hell", &ids));
}

TEST(WordCacheTest, StaysBoundedAndCorrect) {
  WordCache cache(128);
  for (int i = 0; i < 10000; ++i) cache.Insert("w" + std::to_string(i), std::vector<int32_t>{i, -i});
  int hits = 0;
  for (int i = 0; i < 10000; ++i) {
    std::vector<int32_t> ids;
    if (cache.Lookup("w" + std::to_string(i), &ids)) {
      ++hits;
      EXPECT_EQ(ids, std::vector<int32_t>({i, -i}));
    }
  }
  EXPECT_GT(hits, 0);
  EXPECT_LE(hits, 128);
}

TEST(WordCacheTest, ZeroCapacityDisables) {
  WordCache cache(0);
  cache.Insert("x", std::vector<int32_t>{1});
  std::vector<int32_t> ids;
  EXPECT_FALSE(cache.Lookup("x", &ids));
}

}  // namespace
}  // namespace octet
