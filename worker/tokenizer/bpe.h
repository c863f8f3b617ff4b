// The BPE model of a byte-level tokenizer: a pre-token's bytes start as one symbol per byte, then the adjacent
// pair with the best (lowest) merge rank is merged, leftmost first among equal ranks, until no pair has a merge,
// exactly as Hugging Face's BPE does without dropout. Works on raw bytes: the byte-level alphabet of
// tokenizer.json is converted once, at load. Results are cached per word; Encode is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "worker/tokenizer/word_cache.h"

namespace octet {

struct BpeOptions {
  bool ignore_merges = false;       // a word that is itself in the vocabulary is one token, merges or not
  std::optional<int32_t> unk_id;    // bytes without a token become this; dropped when unset (as in HF)
  bool fuse_unk = false;            // consecutive unknown bytes become one unk
  size_t cache_capacity = 1 << 16;  // words
};

class BpeModel {
 public:
  // `vocab`: byte-level token text → id. `merges`: pairs of byte-level token texts, best rank first. Errors name
  // the offending `model.merges` entry. Vocabulary entries outside the byte-level alphabet can never be produced
  // from bytes and are left out of encoding (Decode still knows them).
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(
      const std::vector<std::pair<std::string, int32_t>>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& options);

  // Appends the ids of one pre-token (raw bytes).
  void Encode(std::string_view word, std::vector<int32_t>* ids) const;

  // Encode without the cache. kAuto picks the merge loop by word length; kHeap forces the priority-queue loop
  // (both loops must agree: tests compare them).
  enum class MergeLoop { kAuto, kHeap };
  void EncodeUncached(std::string_view word, std::vector<int32_t>* ids, MergeLoop loop = MergeLoop::kAuto) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  // One symbol of the word being merged; symbols form a doubly linked list over their initial positions.
  struct Symbol {
    int32_t id;    // -1 once merged into its left neighbour
    int32_t prev;  // -1 at the start
    int32_t next;  // -1 at the end
  };

  explicit BpeModel(const BpeOptions& options) : options_(options), cache_(options.cache_capacity) {}

  const Merge* FindMerge(int32_t left, int32_t right) const {
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right));
    return it == merges_.end() ? nullptr : &it->second;
  }
  // Merges symbols[pos] with its right neighbour into `new_id`.
  static void MergeAt(std::vector<Symbol>& symbols, int32_t pos, int32_t new_id);
  void LinearScanMerge(std::vector<Symbol>& symbols) const;
  void HeapMerge(std::vector<Symbol>& symbols) const;

  BpeOptions options_;
  int32_t byte_ids_[256];                                  // the one-byte token of each byte, -1 if none
  absl::flat_hash_map<std::string, int32_t> bytes_to_id_;  // raw bytes → id
  absl::flat_hash_map<uint64_t, Merge> merges_;            // (left id << 32 | right id) → merge
  mutable WordCache cache_;
};

}  // namespace octet
