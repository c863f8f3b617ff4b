// BlockManager's prefix cache: full computed blocks are registered by their token chain, found again by a later
// sequence with the same leading tokens, shared while in use, kept after release and evicted least recently freed
// first.
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "worker/engine/block_manager.h"

namespace octet {
namespace {

Sequence MakeSequence(int64_t id, std::vector<int32_t> tokens) {
  return Sequence(id, "req-" + std::to_string(id), std::move(tokens), SamplingParams{});
}

std::vector<int32_t> Range(int32_t first, int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

// What a prefill of all of seq's tokens does to the block manager: blocks for them, KV computed, full blocks
// registered.
void Prefill(BlockManager& bm, Sequence& seq) {
  const int32_t n = seq.num_tokens() - seq.num_cached_tokens();
  ASSERT_TRUE(bm.CanAppend(seq, n));
  bm.Append(seq, n);
  seq.set_num_cached_tokens(seq.num_tokens());
  bm.CacheFullBlocks(seq);
}

TEST(PrefixCacheTest, ASecondSequenceReusesTheFirstOnesFullBlocks) {
  BlockManager bm(/*num_blocks=*/32, /*block_size=*/4, /*enable_prefix_caching=*/true);
  Sequence a = MakeSequence(1, Range(100, 10));  // blocks: 4 + 4 full, 2 in a partial block
  EXPECT_EQ(bm.AttachCachedPrefix(a), 0);        // nothing cached yet
  Prefill(bm, a);
  ASSERT_EQ(a.block_table().size(), 3u);

  std::vector<int32_t> b_tokens = Range(100, 8);  // a's two full blocks, then other tokens
  b_tokens.push_back(7);
  b_tokens.push_back(8);
  b_tokens.push_back(9);
  Sequence b = MakeSequence(2, b_tokens);
  EXPECT_EQ(bm.AttachCachedPrefix(b), 8);
  EXPECT_EQ(b.num_cached_tokens(), 8);
  EXPECT_EQ(b.block_table(), std::vector<int32_t>(a.block_table().begin(), a.block_table().begin() + 2));
  EXPECT_EQ(bm.num_free_blocks(), 32 - 3);  // shared, not copied

  // While b holds them, a's release keeps the shared blocks in use.
  bm.Deallocate(a);
  EXPECT_EQ(bm.num_free_blocks(), 32 - 2);
  EXPECT_EQ(bm.num_cached_free_blocks(), 0);  // a's partial third block was never registered
  Prefill(bm, b);
  bm.Deallocate(b);
  EXPECT_EQ(bm.num_free_blocks(), 32);
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);  // the shared two; b.s third block has 3 tokens: not full
}

TEST(PrefixCacheTest, TheLastTokenIsAlwaysComputed) {
  BlockManager bm(16, 4, true);
  Sequence a = MakeSequence(1, Range(1, 8));
  Prefill(bm, a);
  bm.Deallocate(a);
  ASSERT_EQ(bm.num_cached_free_blocks(), 2);
  Sequence same = MakeSequence(2, Range(1, 8));  // every block cached, but its last token must still run
  EXPECT_EQ(bm.AttachCachedPrefix(same), 4);
  Sequence longer = MakeSequence(3, Range(1, 9));
  EXPECT_EQ(bm.AttachCachedPrefix(longer), 8);
}

TEST(PrefixCacheTest, AChangedTokenEndsTheMatchAtItsBlock) {
  BlockManager bm(16, 4, true);
  Sequence a = MakeSequence(1, Range(1, 16));
  Prefill(bm, a);
  std::vector<int32_t> tokens = Range(1, 16);
  tokens[9] = 999;  // in the third block
  Sequence b = MakeSequence(2, tokens);
  EXPECT_EQ(bm.AttachCachedPrefix(b), 8);
  tokens = Range(1, 16);
  tokens[0] = 999;
  Sequence c = MakeSequence(3, tokens);
  EXPECT_EQ(bm.AttachCachedPrefix(c), 0);
  // The same block of tokens after a different prefix is a different chain.
  std::vector<int32_t> shifted = {999, 998, 997, 996};
  shifted.insert(shifted.end(), a.token_ids().begin(), a.token_ids().end());
  Sequence d = MakeSequence(4, shifted);
  EXPECT_EQ(bm.AttachCachedPrefix(d), 0);
}

TEST(PrefixCacheTest, EvictionTakesTheLeastRecentlyFreedBlocksTailFirst) {
  BlockManager bm(/*num_blocks=*/4, /*block_size=*/2, true);
  Sequence a = MakeSequence(1, Range(1, 8));  // all four blocks
  Prefill(bm, a);
  bm.Deallocate(a);
  ASSERT_EQ(bm.num_cached_free_blocks(), 4);

  Sequence other = MakeSequence(2, Range(50, 4));  // needs two blocks: a's last two go
  EXPECT_EQ(bm.AttachCachedPrefix(other), 0);
  Prefill(bm, other);
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);
  bm.Deallocate(other);

  Sequence again = MakeSequence(3, Range(1, 8));  // a's head is still cached
  EXPECT_EQ(bm.AttachCachedPrefix(again), 4);
}

TEST(PrefixCacheTest, ADuplicatePrefixComputedTwiceIsRegisteredOnce) {
  BlockManager bm(16, 4, true);
  Sequence a = MakeSequence(1, Range(1, 8));
  Sequence b = MakeSequence(2, Range(1, 8));
  EXPECT_EQ(bm.AttachCachedPrefix(a), 0);
  EXPECT_EQ(bm.AttachCachedPrefix(b), 0);  // both admitted before either was computed
  Prefill(bm, a);
  Prefill(bm, b);
  bm.Deallocate(a);
  bm.Deallocate(b);
  EXPECT_EQ(bm.num_free_blocks(), 16);
  EXPECT_EQ(bm.num_cached_free_blocks(), 2);  // a's; b's copies are plain free blocks
}

TEST(PrefixCacheTest, GeneratedTokensAreCachedToo) {
  BlockManager bm(16, 4, true);
  Sequence a = MakeSequence(1, Range(1, 3));
  Prefill(bm, a);
  for (int32_t t = 4; t <= 9; ++t) {  // decode: sample, then compute the sampled token's KV
    a.AppendToken(t);
    bm.Append(a, 1);
    a.set_num_cached_tokens(a.num_tokens());
    bm.CacheFullBlocks(a);
  }
  EXPECT_EQ(a.block_hashes().size(), 2u);
  Sequence follow_up = MakeSequence(2, Range(1, 12));  // a conversation's next turn
  EXPECT_EQ(bm.AttachCachedPrefix(follow_up), 8);
}

TEST(PrefixCacheTest, OffByDefault) {
  BlockManager bm(16, 4);
  Sequence a = MakeSequence(1, Range(1, 8));
  Prefill(bm, a);
  bm.Deallocate(a);
  EXPECT_EQ(bm.num_cached_free_blocks(), 0);
  Sequence b = MakeSequence(2, Range(1, 8));
  EXPECT_EQ(bm.AttachCachedPrefix(b), 0);
  EXPECT_TRUE(b.block_table().empty());
}

}  // namespace
}  // namespace octet
