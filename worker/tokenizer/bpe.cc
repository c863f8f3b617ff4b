// Byte-level BPE merge loops and model construction (see bpe.h).
#include "worker/tokenizer/bpe.h"

#include <limits>
#include <queue>

#include "absl/strings/str_cat.h"
#include "worker/tokenizer/byte_level.h"

namespace octet {
namespace {

// Words up to this many bytes merge by rescanning all pairs each step (O(n^2), but no heap traffic); longer
// ones use a priority queue (O(n log n)).
constexpr size_t kLinearScanMaxBytes = 48;
// Longer words are not cached (as in HF): they are rare, and a few huge ones would crowd out the rest.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(
    const std::vector<std::pair<std::string, int32_t>>& vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& options) {
  std::unique_ptr<BpeModel> model(new BpeModel(options));
  for (int32_t& id : model->byte_ids_) id = -1;
  absl::flat_hash_map<std::string_view, int32_t> text_to_id;  // byte-level text → id, for the merges
  text_to_id.reserve(vocab.size());
  model->bytes_to_id_.reserve(vocab.size());
  std::string bytes;
  for (const auto& [text, id] : vocab) {
    text_to_id.emplace(text, id);
    if (!byte_level::Decode(text, &bytes) || bytes.empty()) continue;
    model->bytes_to_id_.emplace(bytes, id);
    if (bytes.size() == 1) model->byte_ids_[static_cast<uint8_t>(bytes[0])] = id;
  }

  model->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto find = [&](const std::string& text) -> absl::StatusOr<int32_t> {
      auto it = text_to_id.find(text);
      if (it == text_to_id.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("model.merges[", rank, "]: token \"", text, "\" is not in model.vocab"));
      }
      return it->second;
    };
    absl::StatusOr<int32_t> left_id = find(left);
    if (!left_id.ok()) return left_id.status();
    absl::StatusOr<int32_t> right_id = find(right);
    if (!right_id.ok()) return right_id.status();
    absl::StatusOr<int32_t> new_id = find(left + right);
    if (!new_id.ok()) return new_id.status();
    const uint64_t key =
        (static_cast<uint64_t>(static_cast<uint32_t>(*left_id)) << 32) | static_cast<uint32_t>(*right_id);
    // A repeated pair keeps its last rank, as HF's map built from the list does.
    model->merges_.insert_or_assign(key, Merge{static_cast<int32_t>(rank), *new_id});
  }
  return model;
}

void BpeModel::Encode(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(word[0])];
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable && cache_.Lookup(word, ids)) return;
  const size_t first = ids->size();
  EncodeUncached(word, ids);
  if (cacheable) cache_.Insert(word, absl::MakeConstSpan(ids->data() + first, ids->size() - first));
}

void BpeModel::EncodeUncached(std::string_view word, std::vector<int32_t>* ids, MergeLoop loop) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    auto it = bytes_to_id_.find(absl::string_view(word.data(), word.size()));
    if (it != bytes_to_id_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  bool last_is_fused_unk = false;
  for (char c : word) {
    int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0) {
      if (!options_.unk_id.has_value()) continue;  // HF drops characters it has no token for
      if (options_.fuse_unk && last_is_fused_unk) continue;
      id = *options_.unk_id;
      last_is_fused_unk = true;
    } else {
      last_is_fused_unk = false;
    }
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1});
    if (n > 0) symbols[n - 1].next = n;
  }
  if (symbols.empty()) return;

  if (loop == MergeLoop::kAuto && symbols.size() <= kLinearScanMaxBytes) {
    LinearScanMerge(symbols);
  } else {
    HeapMerge(symbols);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
}

void BpeModel::MergeAt(std::vector<Symbol>& symbols, int32_t pos, int32_t new_id) {
  const int32_t right = symbols[pos].next;
  symbols[pos].id = new_id;
  symbols[pos].next = symbols[right].next;
  if (symbols[right].next >= 0) symbols[symbols[right].next].prev = pos;
  symbols[right].id = -1;
}

void BpeModel::LinearScanMerge(std::vector<Symbol>& symbols) const {
  // rank[i] / new_id[i]: the merge of symbol i with its right neighbour (kNoRank if none).
  constexpr size_t kMax = kLinearScanMaxBytes;
  int32_t rank[kMax];
  int32_t new_id[kMax];
  auto update = [&](int32_t i) {
    const Merge* m = symbols[i].next >= 0 ? FindMerge(symbols[i].id, symbols[symbols[i].next].id) : nullptr;
    rank[i] = m ? m->rank : kNoRank;
    new_id[i] = m ? m->new_id : -1;
  };
  for (int32_t i = 0; i >= 0; i = symbols[i].next) update(i);
  while (true) {
    int32_t best = -1;
    int32_t best_rank = kNoRank;
    for (int32_t i = 0; i >= 0; i = symbols[i].next) {
      if (rank[i] < best_rank) {  // strict: the leftmost of equal ranks wins
        best_rank = rank[i];
        best = i;
      }
    }
    if (best < 0) return;
    MergeAt(symbols, best, new_id[best]);
    update(best);
    if (symbols[best].prev >= 0) update(symbols[best].prev);
  }
}

void BpeModel::HeapMerge(std::vector<Symbol>& symbols) const {
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // priority_queue pops the largest: make the best rank, then the leftmost position, the largest.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate> queue;
  auto push = [&](int32_t i) {
    if (i < 0 || symbols[i].next < 0) return;
    if (const Merge* m = FindMerge(symbols[i].id, symbols[symbols[i].next].id)) queue.push({m->rank, i, m->new_id});
  };
  for (int32_t i = 0; i >= 0; i = symbols[i].next) push(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    // Skip candidates made stale by earlier merges: the symbol is gone, or its pair is no longer this merge.
    // (Symbols only grow, so a changed pair can never produce the same new token.)
    const Symbol& s = symbols[top.pos];
    if (s.id < 0 || s.next < 0) continue;
    const Merge* m = FindMerge(s.id, symbols[s.next].id);
    if (m == nullptr || m->new_id != top.new_id) continue;
    MergeAt(symbols, top.pos, top.new_id);
    push(top.pos);
    push(symbols[top.pos].prev);
  }
}

}  // namespace octet
