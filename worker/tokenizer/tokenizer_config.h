// What octet takes from a Hugging Face tokenizer.json, parsed and validated: everything outside the supported
// byte-level BPE configurations (Qwen2/3/3.5, GPT-2 style) is an error naming the JSON field, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/tokenizer/added_tokens.h"
#include "worker/tokenizer/bpe.h"
#include "worker/tokenizer/pre_tokenizer.h"

namespace octet {

enum class Normalization {
  kNone,  // "normalizer": null
  kNfc,   // {"type": "NFC"}
};

struct TokenizerConfig {
  Normalization normalization = Normalization::kNone;
  // The pre-tokenizer's regex splits, applied one after the other; ByteLevel(use_regex=true) contributes kGpt2.
  // Empty when the whole text is one pre-token.
  std::vector<SplitPattern> splits;
  std::vector<AddedToken> added_tokens;
  std::vector<std::pair<std::string, int32_t>> vocab;       // model.vocab, byte-level text → id
  std::vector<std::pair<std::string, std::string>> merges;  // model.merges in rank order
  BpeOptions bpe;
  // post_processor TemplateProcessing, `single` template: ids around the sequence when add_special_tokens.
  std::vector<int32_t> template_prefix;
  std::vector<int32_t> template_suffix;
};

// Parses and validates tokenizer.json text. InvalidArgument for malformed JSON or an unsupported setting (the
// message names the field), Unimplemented for a pre-tokenizer regex octet has no hand-coded matcher for.
absl::StatusOr<TokenizerConfig> ParseTokenizerJson(std::string_view json);

}  // namespace octet
