// BlockManager: paged KV-cache bookkeeping — which physical blocks are free, which belong to each sequence's
// block_table, and (with prefix caching) which full blocks hold the KV of a known token chain, so that a request
// whose prompt starts like an earlier one reuses those blocks instead of computing them again. No device memory.
//
// Prefix caching: a block is registered once it is full and its KV computed, under a hash of its tokens and of
// the hash of the block before it (so a hash names the whole prefix up to the block's end). Blocks are
// reference-counted; a block no sequence holds goes back to the free list but keeps its KV and its registration
// ("cached") until it is taken for new tokens, oldest-freed first (LRU eviction). Free blocks = blocks with no
// holder, cached or not.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "worker/engine/sequence.h"

namespace octet {

class BlockManager {
 public:
  // num_blocks >= 0 physical blocks of block_size > 0 tokens each.
  BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching = false);

  BlockManager(const BlockManager&) = delete;
  BlockManager& operator=(const BlockManager&) = delete;

  // Whether the free blocks can hold all of seq's tokens (prompt and any already generated ones, as after a
  // preemption).
  bool CanAllocate(const Sequence& seq) const;
  // Fills seq's empty block_table with blocks for all its tokens. Requires CanAllocate(seq).
  void Allocate(Sequence& seq);
  // Releases all of seq's blocks, clears its block_table and sets num_cached_tokens to 0 (its KV is no longer
  // its own). Blocks other sequences share stay theirs; registered blocks stay cached until evicted.
  // Checks that each block is held: a double free is a programmer error.
  void Deallocate(Sequence& seq);

  // Prefix caching (no-op returning 0 when off): gives seq, which holds no blocks, the cached blocks of the
  // longest prefix of its tokens that is cached, leaving at least its last token to compute (the step that
  // computes it yields the logits to sample from); sets num_cached_tokens to the tokens they hold and returns it.
  int32_t AttachCachedPrefix(Sequence& seq);
  // Registers seq's full blocks whose KV is computed (below num_cached_tokens) and not registered yet. A block
  // whose prefix is already cached in another block stays unregistered (and is plainly freed later).
  void CacheFullBlocks(Sequence& seq);

  // Append: before a forward pass that writes the keys and values of num_new_tokens tokens of seq starting at
  // position seq.num_cached_tokens(), grows seq's block_table to hold num_cached_tokens() + num_new_tokens tokens.
  // For a decode step (num_cached_tokens() == num_tokens() - 1: only the last sampled token lacks its KV), call it
  // with num_new_tokens = 1: the table then covers seq.num_tokens() tokens. Never shrinks the table.
  // CanAppend says whether the free blocks suffice; Append requires it.
  bool CanAppend(const Sequence& seq, int32_t num_new_tokens) const;
  void Append(Sequence& seq, int32_t num_new_tokens);

  // Blocks a table must hold for num_tokens tokens.
  int32_t BlocksFor(int32_t num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }

  int32_t num_blocks() const { return num_blocks_; }
  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  int32_t num_free_blocks() const { return num_free_; }
  // Free blocks that still hold a registered prefix's KV (reusable until evicted).
  int32_t num_cached_free_blocks() const { return num_cached_free_; }
  // Share of blocks held by sequences, in [0, 1] (0 when there are no blocks).
  double usage() const;

 private:
  static constexpr int32_t kNone = -1;

  // Extra blocks seq needs so its table holds num_tokens tokens (0 if it already does).
  int32_t ExtraBlocksFor(const Sequence& seq, int32_t num_tokens) const;
  // Takes the least recently freed block, evicting its registration if it has one.
  int32_t TakeFreeBlock();
  // Hash of the block of `tokens` that follows a prefix hashed `parent`.
  static uint64_t ChainHash(uint64_t parent, const int32_t* tokens, int32_t n);
  // The registered block for this chain hash whose parent hash and tokens are these, or kNone.
  int32_t FindCached(uint64_t hash, uint64_t parent, const int32_t* tokens) const;
  void Unregister(int32_t block);
  // Free list: a doubly linked list over block ids, head = next to take.
  void PushFree(int32_t block);
  void RemoveFree(int32_t block);

  int32_t num_blocks_;
  int32_t block_size_;
  bool prefix_caching_;
  std::vector<int32_t> ref_count_;  // [num_blocks] sequences holding the block
  std::vector<int32_t> prev_free_, next_free_;
  int32_t free_head_ = kNone, free_tail_ = kNone;
  int32_t num_free_ = 0;
  int32_t num_cached_free_ = 0;
  // Prefix cache (only with prefix caching): chain hash -> block, and each registered block's hash, the hash of
  // the prefix before it and its tokens. Lookups compare the tokens and the parent hash too, so a wrong reuse
  // needs two different prefixes with one 64-bit hash, not just two blocks.
  absl::flat_hash_map<uint64_t, int32_t> cached_;
  std::vector<bool> registered_;       // [num_blocks]
  std::vector<uint64_t> block_hash_;   // [num_blocks]
  std::vector<uint64_t> parent_hash_;  // [num_blocks]
  std::vector<int32_t> block_tokens_;  // [num_blocks * block_size]
};

}  // namespace octet
