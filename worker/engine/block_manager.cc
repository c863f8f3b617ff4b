// BlockManager: free list of KV-cache blocks, the block tables of sequences, and the prefix cache.
#include "worker/engine/block_manager.h"

#include <algorithm>

#include "base/log.h"

namespace octet {
namespace {

constexpr uint64_t kRootHash = 0;  // the "prefix" before a sequence's first block

// splitmix64's finalizer: a cheap, well-mixed 64-bit step.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : num_blocks_(num_blocks), block_size_(block_size), prefix_caching_(enable_prefix_caching) {
  OCTET_CHECK(num_blocks >= 0) << "num_blocks " << num_blocks;
  OCTET_CHECK(block_size > 0) << "block_size " << block_size;
  ref_count_.assign(num_blocks, 0);
  prev_free_.assign(num_blocks, kNone);
  next_free_.assign(num_blocks, kNone);
  registered_.assign(num_blocks, false);
  if (prefix_caching_) {
    block_hash_.assign(num_blocks, 0);
    parent_hash_.assign(num_blocks, 0);
    block_tokens_.assign(static_cast<size_t>(num_blocks) * block_size, 0);
  }
  for (int32_t b = 0; b < num_blocks; ++b) PushFree(b);
}

void BlockManager::PushFree(int32_t block) {
  prev_free_[block] = free_tail_;
  next_free_[block] = kNone;
  if (free_tail_ != kNone) {
    next_free_[free_tail_] = block;
  } else {
    free_head_ = block;
  }
  free_tail_ = block;
  ++num_free_;
  if (registered_[block]) ++num_cached_free_;
}

void BlockManager::RemoveFree(int32_t block) {
  const int32_t prev = prev_free_[block], next = next_free_[block];
  (prev != kNone ? next_free_[prev] : free_head_) = next;
  (next != kNone ? prev_free_[next] : free_tail_) = prev;
  prev_free_[block] = next_free_[block] = kNone;
  --num_free_;
  if (registered_[block]) --num_cached_free_;
}

int32_t BlockManager::ExtraBlocksFor(const Sequence& seq, int32_t num_tokens) const {
  const int32_t needed = BlocksFor(num_tokens) - static_cast<int32_t>(seq.block_table().size());
  return needed > 0 ? needed : 0;
}

int32_t BlockManager::TakeFreeBlock() {
  OCTET_CHECK(free_head_ != kNone) << "no free KV block";
  const int32_t block = free_head_;
  RemoveFree(block);
  if (registered_[block]) Unregister(block);  // evicted: its KV is about to be overwritten
  ref_count_[block] = 1;
  return block;
}

void BlockManager::Unregister(int32_t block) {
  cached_.erase(block_hash_[block]);
  registered_[block] = false;
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
  // Last block first: when eviction comes, a sequence's tail (least likely shared) goes before its head.
  for (auto it = seq.block_table().rbegin(); it != seq.block_table().rend(); ++it) {
    const int32_t block = *it;
    OCTET_CHECK(block >= 0 && block < num_blocks_) << "sequence " << seq.seq_id() << " frees unknown block " << block;
    OCTET_CHECK(ref_count_[block] > 0) << "sequence " << seq.seq_id() << " frees free block " << block;
    if (--ref_count_[block] == 0) PushFree(block);
  }
  seq.block_table().clear();
  seq.block_hashes().clear();
  seq.set_num_cached_tokens(0);
}

uint64_t BlockManager::ChainHash(uint64_t parent, const int32_t* tokens, int32_t n) {
  uint64_t h = Mix(parent);
  for (int32_t i = 0; i < n; ++i) h = Mix(h ^ static_cast<uint32_t>(tokens[i]));
  return h;
}

int32_t BlockManager::FindCached(uint64_t hash, uint64_t parent, const int32_t* tokens) const {
  const auto it = cached_.find(hash);
  if (it == cached_.end()) return kNone;
  const int32_t block = it->second;
  if (parent_hash_[block] != parent) return kNone;
  const int32_t* stored = block_tokens_.data() + static_cast<size_t>(block) * block_size_;
  return std::equal(tokens, tokens + block_size_, stored) ? block : kNone;
}

int32_t BlockManager::AttachCachedPrefix(Sequence& seq) {
  if (!prefix_caching_) return 0;
  OCTET_CHECK(seq.block_table().empty()) << "sequence " << seq.seq_id() << " already has blocks";
  const int32_t max_blocks = (seq.num_tokens() - 1) / block_size_;  // the last token is always computed
  const int32_t* tokens = seq.token_ids().data();
  uint64_t parent = kRootHash;
  for (int32_t i = 0; i < max_blocks; ++i) {
    const int32_t* block_tokens = tokens + static_cast<size_t>(i) * block_size_;
    const uint64_t hash = ChainHash(parent, block_tokens, block_size_);
    const int32_t block = FindCached(hash, parent, block_tokens);
    if (block == kNone) break;
    if (ref_count_[block] == 0) RemoveFree(block);
    ++ref_count_[block];
    seq.block_table().push_back(block);
    seq.block_hashes().push_back(hash);
    parent = hash;
  }
  const int32_t hit = static_cast<int32_t>(seq.block_table().size()) * block_size_;
  seq.set_num_cached_tokens(hit);
  return hit;
}

void BlockManager::CacheFullBlocks(Sequence& seq) {
  if (!prefix_caching_) return;
  const int32_t full = std::min(seq.num_cached_tokens() / block_size_, static_cast<int32_t>(seq.block_table().size()));
  std::vector<uint64_t>& hashes = seq.block_hashes();
  const int32_t* tokens = seq.token_ids().data();
  for (int32_t i = static_cast<int32_t>(hashes.size()); i < full; ++i) {
    const uint64_t parent = i > 0 ? hashes[i - 1] : kRootHash;
    const int32_t* block_tokens = tokens + static_cast<size_t>(i) * block_size_;
    const uint64_t hash = ChainHash(parent, block_tokens, block_size_);
    hashes.push_back(hash);
    const int32_t block = seq.block_table()[i];
    if (registered_[block] || cached_.contains(hash)) continue;  // this prefix is already cached
    cached_.emplace(hash, block);
    registered_[block] = true;
    block_hash_[block] = hash;
    parent_hash_[block] = parent;
    std::copy(block_tokens, block_tokens + block_size_,
              block_tokens_.begin() + static_cast<size_t>(block) * block_size_);
  }
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
