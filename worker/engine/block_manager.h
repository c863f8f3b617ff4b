// BlockManager: paged KV-cache bookkeeping — which physical blocks are free and which belong to each sequence's
// block_table. No device memory and no prefix caching (yet).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "worker/engine/sequence.h"

namespace octet {

class BlockManager {
 public:
  // num_blocks >= 0 physical blocks of block_size > 0 tokens each.
  BlockManager(int32_t num_blocks, int32_t block_size);

  BlockManager(const BlockManager&) = delete;
  BlockManager& operator=(const BlockManager&) = delete;

  // Whether the free blocks can hold all of seq's tokens (prompt and any already generated ones, as after a
  // preemption).
  bool CanAllocate(const Sequence& seq) const;
  // Fills seq's empty block_table with blocks for all its tokens. Requires CanAllocate(seq).
  void Allocate(Sequence& seq);
  // Frees all of seq's blocks, clears its block_table and sets num_cached_tokens to 0 (its KV is gone).
  // Checks that each block is allocated: a double free is a programmer error.
  void Deallocate(Sequence& seq);

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
  int32_t num_free_blocks() const { return static_cast<int32_t>(free_blocks_.size()); }
  // Share of blocks in use, in [0, 1] (0 when there are no blocks).
  double usage() const;

 private:
  // Extra blocks seq needs so its table holds num_tokens tokens (0 if it already does).
  int32_t ExtraBlocksFor(const Sequence& seq, int32_t num_tokens) const;
  int32_t TakeFreeBlock();

  int32_t num_blocks_;
  int32_t block_size_;
  std::deque<int32_t> free_blocks_;  // taken from the front, returned to the back
  std::vector<bool> allocated_;      // [num_blocks]
};

}  // namespace octet
