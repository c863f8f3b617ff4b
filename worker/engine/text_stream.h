// TextStream: one sequence's generated text as it streams out — incremental detokenization plus stop strings.
// Text that could still become a stop string is held back until it can't (or the sequence finishes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/tokenizer/incremental_detokenizer.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {

class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop);

  // Adds a token's text. Returns true when a stop string is now complete: the text from the stop string on is
  // dropped, and no later token should be pushed.
  bool Push(int32_t token_id);
  // The text that can be sent now: everything when `final`, else all but a possible stop-string prefix.
  // Never ends inside a UTF-8 character.
  std::string Take(bool final);

 private:
  IncrementalDetokenizer detokenizer_;
  std::vector<std::string> stop_;
  size_t max_stop_len_ = 0;
  std::string pending_;     // decoded, not yet sent
  size_t search_from_ = 0;  // stop strings cannot end before this offset of pending_
  bool stopped_ = false;    // a stop string completed: bytes still held by the detokenizer are dropped
};

}  // namespace octet
