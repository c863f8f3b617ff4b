#include "worker/engine/text_stream.h"

#include <algorithm>

namespace octet {
namespace {

// Length of the longest prefix of s that is a valid UTF-8 boundary not after `limit`.
size_t Utf8BoundaryAtOrBefore(const std::string& s, size_t limit) {
  size_t i = std::min(limit, s.size());
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop)
    : detokenizer_(tokenizer, /*skip_special_tokens=*/true), stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
  for (const std::string& s : stop_) max_stop_len_ = std::max(max_stop_len_, s.size());
}

bool TextStream::Push(int32_t token_id) {
  pending_ += detokenizer_.Push(token_id);
  if (stop_.empty()) return false;
  // A stop string that completes now ends within the new text; it may start up to max_stop_len_ - 1 earlier.
  const size_t from = search_from_ > max_stop_len_ ? search_from_ - max_stop_len_ : 0;
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    const size_t at = pending_.find(s, from);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  search_from_ = pending_.size();
  if (cut == std::string::npos) return false;
  pending_.resize(cut);
  stopped_ = true;
  return true;
}

std::string TextStream::Take(bool final) {
  if (final && !stopped_) pending_ += detokenizer_.Flush();
  size_t n = pending_.size();
  if (!final && max_stop_len_ > 1) {
    n = pending_.size() > max_stop_len_ - 1 ? pending_.size() - (max_stop_len_ - 1) : 0;
    n = Utf8BoundaryAtOrBefore(pending_, n);
  }
  std::string out = pending_.substr(0, n);
  pending_.erase(0, n);
  search_from_ = search_from_ > n ? search_from_ - n : 0;
  return out;
}

}  // namespace octet
