// A bounded, thread-safe cache from a pre-token's bytes to its BPE ids. Sharded so that concurrent Encode calls
// rarely wait on each other; a full shard is cleared rather than evicted entry by entry (the words that matter
// come back at once, and it keeps memory strictly bounded without LRU bookkeeping).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"

namespace octet {

class WordCache {
 public:
  // At most `capacity` words are kept (0 disables the cache).
  explicit WordCache(size_t capacity);

  // Appends the cached ids of `word` to *ids and returns true, or returns false.
  bool Lookup(std::string_view word, std::vector<int32_t>* ids) const;
  void Insert(std::string_view word, absl::Span<const int32_t> ids);

 private:
  static constexpr size_t kNumShards = 64;
  using Ids = absl::InlinedVector<int32_t, 4>;
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, Ids> map;
  };

  Shard& ShardFor(std::string_view word) const;

  size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace octet
