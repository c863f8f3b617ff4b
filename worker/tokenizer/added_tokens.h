// Added tokens (tokenizer.json `added_tokens`): strings matched in the text before any pre-tokenization and
// never split by BPE. Matching follows Hugging Face's AddedVocabulary: leftmost-longest, then `lstrip` / `rstrip`
// widen a match over adjacent White_Space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace octet {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;     // skipped by Decode(..., skip_special_tokens=true)
  bool lstrip = false;      // the match also takes the white space before it
  bool rstrip = false;      // the match also takes the white space after it
  bool normalized = false;  // matched in normalized text rather than the raw input
};

// A piece of text produced by AddedTokenMatcher::Split: either plain text or one added token.
struct TextSegment {
  size_t begin;
  size_t end;
  int32_t token_id;  // kPlainText for text the tokenizer must still encode
  static constexpr int32_t kPlainText = -1;
};

class AddedTokenMatcher {
 public:
  // `content` must not be empty. A content added twice keeps the first token.
  void Add(const AddedToken& token);
  bool empty() const { return tokens_.empty(); }

  // Appends the segments of `text` in order; they cover it (white space taken by lstrip/rstrip belongs to the
  // token's segment), and plain-text segments are never empty. Scanning resumes after the rstrip-widened match
  // (Hugging Face resumes after the token itself; they differ only for tokens that start with white space).
  void Split(std::string_view text, std::vector<TextSegment>* segments) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // (byte, node index), sorted by byte
    int32_t token = -1;                                 // index into tokens_ when a token ends here
  };
  struct Match {
    size_t length;
    int32_t token;
  };

  // The longest token starting at text[pos], if any.
  bool LongestAt(std::string_view text, size_t pos, Match* match) const;
  int32_t Child(int32_t node, uint8_t byte) const;

  std::vector<Node> nodes_{1};  // nodes_[0] is the root
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};  // whether some token starts with the byte
};

}  // namespace octet
