#include "worker/engine/block_manager.h"

#include <numeric>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace octet {
namespace {

Sequence MakeSequence(int64_t id, int32_t num_tokens) {
  std::vector<int32_t> tokens(num_tokens);
  std::iota(tokens.begin(), tokens.end(), 1);
  return Sequence(id, "req-" + std::to_string(id), std::move(tokens), SamplingParams{});
}

TEST(BlockManagerTest, StartsEmpty) {
  BlockManager bm(10, 16);
  EXPECT_EQ(bm.num_blocks(), 10);
  EXPECT_EQ(bm.block_size(), 16);
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_DOUBLE_EQ(bm.usage(), 0.0);
}

TEST(BlockManagerTest, ExactBlockCountsAtBoundaries) {
  const std::vector<std::pair<int32_t, size_t>> cases = {{1, 1}, {15, 1}, {16, 1}, {17, 2}, {32, 2}, {33, 3}};
  for (const auto& [num_tokens, blocks] : cases) {
    BlockManager bm(8, 16);
    Sequence seq = MakeSequence(1, num_tokens);
    ASSERT_TRUE(bm.CanAllocate(seq));
    bm.Allocate(seq);
    EXPECT_EQ(seq.block_table().size(), blocks) << num_tokens << " tokens";
    EXPECT_EQ(bm.num_free_blocks(), 8 - static_cast<int32_t>(blocks)) << num_tokens << " tokens";
  }
}

TEST(BlockManagerTest, AllocateGivesDistinctBlocksAndDeallocateReturnsThem) {
  BlockManager bm(10, 4);
  Sequence a = MakeSequence(1, 9);  // 3 blocks
  Sequence b = MakeSequence(2, 8);  // 2 blocks
  bm.Allocate(a);
  bm.Allocate(b);
  EXPECT_EQ(bm.num_free_blocks(), 5);
  EXPECT_DOUBLE_EQ(bm.usage(), 0.5);
  std::set<int32_t> ids(a.block_table().begin(), a.block_table().end());
  ids.insert(b.block_table().begin(), b.block_table().end());
  EXPECT_EQ(ids.size(), 5u);
  for (int32_t id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 10);
  }

  a.set_num_cached_tokens(9);
  bm.Deallocate(a);
  EXPECT_TRUE(a.block_table().empty());
  EXPECT_EQ(a.num_cached_tokens(), 0);
  EXPECT_EQ(bm.num_free_blocks(), 8);
  bm.Deallocate(b);
  EXPECT_EQ(bm.num_free_blocks(), 10);
  EXPECT_DOUBLE_EQ(bm.usage(), 0.0);
}

TEST(BlockManagerTest, CanAllocateFalseWhenFullAndBlocksReusedAfterRelease) {
  BlockManager bm(4, 16);
  Sequence a = MakeSequence(1, 64);  // exactly all 4 blocks
  ASSERT_TRUE(bm.CanAllocate(a));
  bm.Allocate(a);
  EXPECT_EQ(bm.num_free_blocks(), 0);
  EXPECT_DOUBLE_EQ(bm.usage(), 1.0);

  Sequence b = MakeSequence(2, 1);
  EXPECT_FALSE(bm.CanAllocate(b));
  Sequence too_big = MakeSequence(3, 65);
  bm.Deallocate(a);
  EXPECT_FALSE(bm.CanAllocate(too_big));  // 5 blocks > 4 even when all are free

  const std::set<int32_t> released = {0, 1, 2, 3};
  ASSERT_TRUE(bm.CanAllocate(b));
  bm.Allocate(b);
  ASSERT_EQ(b.block_table().size(), 1u);
  EXPECT_TRUE(released.count(b.block_table()[0]));
}

TEST(BlockManagerTest, AppendGrowsOnlyAtBlockBoundaries) {
  BlockManager bm(4, 16);
  Sequence seq = MakeSequence(1, 16);
  bm.Allocate(seq);
  ASSERT_EQ(seq.block_table().size(), 1u);
  seq.set_num_cached_tokens(16);  // prefill wrote all 16

  // Decode loop: a token is sampled and appended, then the next step writes its KV.
  for (int32_t n = 17; n <= 48; ++n) {
    seq.AppendToken(n);
    ASSERT_EQ(seq.num_cached_tokens(), seq.num_tokens() - 1);
    ASSERT_TRUE(bm.CanAppend(seq, 1));
    bm.Append(seq, 1);
    EXPECT_EQ(static_cast<int32_t>(seq.block_table().size()), (n + 15) / 16) << n << " tokens";
    seq.set_num_cached_tokens(n);
  }
  EXPECT_EQ(seq.block_table().size(), 3u);
  EXPECT_EQ(bm.num_free_blocks(), 1);
  const std::set<int32_t> ids(seq.block_table().begin(), seq.block_table().end());
  EXPECT_EQ(ids.size(), 3u);
}

TEST(BlockManagerTest, AppendSeveralTokensAtOnce) {
  BlockManager bm(8, 4);
  Sequence seq = MakeSequence(1, 20);
  // Chunked prefill: room for the first 6 tokens, then 10 more, then 0 more (no-op).
  EXPECT_TRUE(bm.CanAppend(seq, 6));
  bm.Append(seq, 6);
  EXPECT_EQ(seq.block_table().size(), 2u);
  seq.set_num_cached_tokens(6);
  bm.Append(seq, 10);
  EXPECT_EQ(seq.block_table().size(), 4u);
  bm.Append(seq, 0);
  EXPECT_EQ(seq.block_table().size(), 4u);
  EXPECT_EQ(bm.num_free_blocks(), 4);
}

TEST(BlockManagerTest, CanAppendWhenFullOnlyInsideTheLastBlock) {
  BlockManager bm(2, 16);
  Sequence seq = MakeSequence(1, 31);  // 2 blocks, all of them
  bm.Allocate(seq);
  seq.set_num_cached_tokens(31);
  ASSERT_EQ(bm.num_free_blocks(), 0);
  seq.AppendToken(7);  // token 32 still fits block 2
  EXPECT_TRUE(bm.CanAppend(seq, 1));
  bm.Append(seq, 1);
  EXPECT_EQ(seq.block_table().size(), 2u);
  seq.set_num_cached_tokens(32);
  seq.AppendToken(8);  // token 33 needs a third block
  EXPECT_FALSE(bm.CanAppend(seq, 1));

  Sequence other = MakeSequence(2, 1);
  bm.Deallocate(seq);
  ASSERT_TRUE(bm.CanAllocate(other));
}

TEST(BlockManagerTest, EmptySequenceNeedsNoBlocks) {
  BlockManager bm(1, 16);
  Sequence seq = MakeSequence(1, 0);
  EXPECT_TRUE(bm.CanAllocate(seq));
  bm.Allocate(seq);
  EXPECT_TRUE(seq.block_table().empty());
  EXPECT_EQ(bm.num_free_blocks(), 1);
}

TEST(BlockManagerDeathTest, DoubleFreeAborts) {
  BlockManager bm(4, 16);
  Sequence a = MakeSequence(1, 20);
  bm.Allocate(a);
  Sequence copy = MakeSequence(2, 20);
  copy.block_table() = a.block_table();
  bm.Deallocate(a);
  EXPECT_DEATH(bm.Deallocate(copy), "frees free block");
}

TEST(BlockManagerDeathTest, UnknownBlockAborts) {
  BlockManager bm(4, 16);
  Sequence seq = MakeSequence(1, 1);
  seq.block_table() = {4};
  EXPECT_DEATH(bm.Deallocate(seq), "unknown block");
}

TEST(BlockManagerDeathTest, AllocateWithoutRoomAborts) {
  BlockManager bm(1, 16);
  Sequence seq = MakeSequence(1, 17);
  EXPECT_DEATH(bm.Allocate(seq), "needs 2 blocks");
}

TEST(BlockManagerDeathTest, AllocateTwiceAborts) {
  BlockManager bm(4, 16);
  Sequence seq = MakeSequence(1, 1);
  bm.Allocate(seq);
  EXPECT_DEATH(bm.Allocate(seq), "already has blocks");
}

}  // namespace
}  // namespace octet
