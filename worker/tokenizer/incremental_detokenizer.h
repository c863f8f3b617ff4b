// IncrementalDetokenizer: one sequence's token ids → UTF-8 text as the ids arrive. Bytes of a character split
// across tokens are held back until the character is complete, so every piece returned is valid UTF-8 and no
// character is ever cut between pieces; bytes that can never complete become U+FFFD. The pieces concatenated
// equal utf8::Lossy(tokenizer.Decode(ids, skip_special_tokens)).
#pragma once

#include <cstdint>
#include <string>

#include "worker/tokenizer/tokenizer.h"

namespace octet {

class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive this object. Special tokens come out as their content unless skipped.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // The text completed by this token (possibly empty).
  std::string Push(int32_t token_id);
  // Whatever is still held back, as U+FFFD (the sequence ended inside a character). Push may follow.
  std::string Flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // an incomplete UTF-8 sequence (at most 3 bytes)
};

}  // namespace octet
