// BlockManager: free list of KV-cache blocks and the block tables of sequences.
#include "worker/engine/block_manager.h"

#include "base/log.h"

namespace octet {

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size), allocated_(num_blocks > 0 ? num_blocks : 0, false) {
  OCTET_CHECK(num_blocks >= 0) << "num_blocks " << num_blocks;
  OCTET_CHECK(block_size > 0) << "block_size " << block_size;
  for (int32_t b = 0; b < num_blocks; ++b) free_blocks_.push_back(b);
}

int32_t BlockManager::ExtraBlocksFor(const Sequence& seq, int32_t num_tokens) const {
  const int32_t needed = BlocksFor(num_tokens) - static_cast<int32_t>(seq.block_table().size());
  return needed > 0 ? needed : 0;
}

int32_t BlockManager::TakeFreeBlock() {
  OCTET_CHECK(!free_blocks_.empty()) << "no free KV block";
  const int32_t block = free_blocks_.front();
  free_blocks_.pop_front();
  allocated_[block] = true;
  return block;
}

bool BlockManager::CanAllocate(const Sequence& seq) const { return BlocksFor(seq.num_tokens()) <= num_free_blocks(); }

void BlockManager::Allocate(Sequence& seq) {
  OCTET_CHECK(seq.block_table().empty()) << "sequence " << seq.seq_id() << " already has blocks";
  OCTET_CHECK(CanAllocate(seq)) << "sequence " << seq.seq_id() << " needs " << BlocksFor(seq.num_tokens())
                                << " blocks, " << num_free_blocks() << " free";
  const int32_t n = BlocksFor(seq.num_tokens());
  seq.block_table().reserve(n);
  for (int32_t i = 0; i < n; ++i) seq.block_table().push_back(TakeFreeBlock());
}

void BlockManager::Deallocate(Sequence& seq) {
  for (int32_t block : seq.block_table()) {
    OCTET_CHECK(block >= 0 && block < num_blocks_) << "sequence " << seq.seq_id() << " frees unknown block " << block;
    OCTET_CHECK(allocated_[block]) << "sequence " << seq.seq_id() << " frees free block " << block;
    allocated_[block] = false;
    free_blocks_.push_back(block);
  }
  seq.block_table().clear();
  seq.set_num_cached_tokens(0);
}

bool BlockManager::CanAppend(const Sequence& seq, int32_t num_new_tokens) const {
  OCTET_CHECK(num_new_tokens >= 0) << "num_new_tokens " << num_new_tokens;
  return ExtraBlocksFor(seq, seq.num_cached_tokens() + num_new_tokens) <= num_free_blocks();
}

void BlockManager::Append(Sequence& seq, int32_t num_new_tokens) {
  OCTET_CHECK(CanAppend(seq, num_new_tokens)) << "sequence " << seq.seq_id() << " cannot grow by " << num_new_tokens
                                              << " tokens: " << num_free_blocks() << " blocks free";
  const int32_t extra = ExtraBlocksFor(seq, seq.num_cached_tokens() + num_new_tokens);
  for (int32_t i = 0; i < extra; ++i) seq.block_table().push_back(TakeFreeBlock());
}

double BlockManager::usage() const {
  if (num_blocks_ == 0) return 0.0;
  return static_cast<double>(num_blocks_ - num_free_blocks()) / num_blocks_;
}

}  // namespace octet
