// Added-token matching with a byte trie (see added_tokens.h).
#include "worker/tokenizer/added_tokens.h"

#include <algorithm>

#include "worker/tokenizer/unicode.h"
#include "worker/tokenizer/utf8.h"

namespace octet {

int32_t AddedTokenMatcher::Child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  auto it = std::lower_bound(children.begin(), children.end(), byte,
                             [](const std::pair<uint8_t, int32_t>& c, uint8_t b) { return c.first < b; });
  return it != children.end() && it->first == byte ? it->second : -1;
}

void AddedTokenMatcher::Add(const AddedToken& token) {
  if (token.content.empty()) return;
  int32_t node = 0;
  for (char ch : token.content) {
    const auto byte = static_cast<uint8_t>(ch);
    int32_t child = Child(node, byte);
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();  // may reallocate: index, don't hold references across it
      auto& children = nodes_[node].children;
      auto at = std::lower_bound(children.begin(), children.end(), byte,
                                 [](const std::pair<uint8_t, int32_t>& c, uint8_t b) { return c.first < b; });
      children.insert(at, {byte, child});
    }
    node = child;
  }
  if (nodes_[node].token >= 0) return;
  nodes_[node].token = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
  first_byte_[static_cast<uint8_t>(token.content[0])] = true;
}

bool AddedTokenMatcher::LongestAt(std::string_view text, size_t pos, Match* match) const {
  bool found = false;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = Child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token >= 0) {
      *match = {i + 1 - pos, nodes_[node].token};
      found = true;
    }
  }
  return found;
}

void AddedTokenMatcher::Split(std::string_view text, std::vector<TextSegment>* segments) const {
  size_t done = 0;  // text before this is already in *segments
  size_t pos = 0;
  while (pos < text.size()) {
    Match match;
    if (!first_byte_[static_cast<uint8_t>(text[pos])] || !LongestAt(text, pos, &match)) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[match.token];
    size_t start = pos;
    size_t stop = pos + match.length;
    if (token.lstrip) {
      while (start > done) {
        const size_t prev = utf8::PreviousCharStart(text, start);
        char32_t cp;
        utf8::DecodeAt(text, prev, &cp);
        if (!unicode::IsWhiteSpace(cp)) break;
        start = prev;
      }
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        char32_t cp;
        const int len = utf8::DecodeAt(text, stop, &cp);
        if (!unicode::IsWhiteSpace(cp)) break;
        stop += len;
      }
    }
    if (start > done) segments->push_back({done, start, TextSegment::kPlainText});
    segments->push_back({start, stop, token.id});
    done = pos = stop;
  }
  if (done < text.size()) segments->push_back({done, text.size(), TextSegment::kPlainText});
}

}  // namespace octet
