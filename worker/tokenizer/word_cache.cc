// Sharded word → ids cache (see word_cache.h).
#include "worker/tokenizer/word_cache.h"

#include "absl/hash/hash.h"

namespace octet {

WordCache::WordCache(size_t capacity)
    : shard_capacity_((capacity + kNumShards - 1) / kNumShards), shards_(new Shard[kNumShards]) {}

WordCache::Shard& WordCache::ShardFor(std::string_view word) const {
  // The high bits: the map itself indexes by the low ones, so shards keep their own spread.
  return shards_[(absl::Hash<absl::string_view>{}(absl::string_view(word.data(), word.size())) >> 40) % kNumShards];
}

bool WordCache::Lookup(std::string_view word, std::vector<int32_t>* ids) const {
  if (shard_capacity_ == 0) return false;
  Shard& shard = ShardFor(word);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(absl::string_view(word.data(), word.size()));
  if (it == shard.map.end()) return false;
  ids->insert(ids->end(), it->second.begin(), it->second.end());
  return true;
}

void WordCache::Insert(std::string_view word, absl::Span<const int32_t> ids) {
  if (shard_capacity_ == 0) return;
  Shard& shard = ShardFor(word);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= shard_capacity_) shard.map.clear();
  shard.map.try_emplace(std::string(word), ids.begin(), ids.end());
}

}  // namespace octet
