// Streaming detokenization (see incremental_detokenizer.h).
#include "worker/tokenizer/incremental_detokenizer.h"

#include "worker/tokenizer/utf8.h"

namespace octet {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::Push(int32_t token_id) {
  std::string out;
  if (skip_special_tokens_ && tokenizer_->IsSpecial(token_id)) return out;
  const std::string_view bytes = tokenizer_->TokenBytes(token_id);
  if (bytes.empty()) return out;
  if (pending_.empty()) {
    // Common case: nothing held back, the token alone decides.
    const size_t used = utf8::AppendLossy(bytes, /*at_end=*/false, &out);
    pending_.assign(bytes.substr(used));
    return out;
  }
  pending_.append(bytes);
  const size_t used = utf8::AppendLossy(pending_, /*at_end=*/false, &out);
  pending_.erase(0, used);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out;
  utf8::AppendLossy(pending_, /*at_end=*/true, &out);
  pending_.clear();
  return out;
}

}  // namespace octet
