// Tokenizer: text ↔ token ids for byte-level BPE models (Qwen2/3/3.5, GPT-2 style), loaded from a Hugging Face
// tokenizer.json and matching Hugging Face `tokenizers` id for id. Immutable after loading; every method is
// thread-safe (Encode shares a word cache behind sharded locks).
//
//   text ─ added tokens split out ─ NFC ─ regex pre-tokenizer ─ BPE per piece (cached) ─ template ─► ids
//   ids ─► each token's raw bytes, concatenated (Decode), or streamed as UTF-8 (IncrementalDetokenizer)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/tokenizer/added_tokens.h"
#include "worker/tokenizer/bpe.h"
#include "worker/tokenizer/tokenizer_config.h"

namespace octet {

class Tokenizer {
 public:
  // NotFound if the file cannot be read; otherwise as FromJson.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  // InvalidArgument (naming the field) for malformed or unsupported tokenizer.json, Unimplemented for an unknown
  // pre-tokenizer regex.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json);

  // The ids of `text` (UTF-8; ill-formed bytes are kept and encoded as bytes). Added tokens in the text are
  // matched first and never split. `add_special_tokens` applies a TemplateProcessing post-processor, as HF's
  // encode(add_special_tokens=True) does; Qwen's tokenizer.json has none, so it changes nothing there.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = true) const;

  // The exact bytes of `ids` concatenated; may be ill-formed UTF-8 (e.g. a character cut between tokens).
  // Unknown ids are skipped, as HF does; special tokens too when `skip_special_tokens`.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The raw bytes of one token (an added token's content as written); empty for an unknown id.
  std::string_view TokenBytes(int32_t id) const;

  // Max id + 1 over the vocabulary and the added tokens.
  int32_t vocab_size() const { return static_cast<int32_t>(token_offsets_.size()) - 1; }

  // The id of a token as tokenizer.json spells it (byte-level text for vocabulary entries, e.g. "Ġthe";
  // the content for added tokens, e.g. "<|im_end|>").
  std::optional<int32_t> TokenToId(std::string_view token) const;

  // Whether `id` is an added token marked special (skipped by skip_special_tokens).
  bool IsSpecial(int32_t id) const { return id >= 0 && id < vocab_size() && is_special_[id]; }

 private:
  Tokenizer() = default;
  absl::Status Init(TokenizerConfig config);

  // Text between added tokens of the raw input: normalized, then normalized added tokens split out.
  void EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const;
  // Normalized text without added tokens: pre-tokenized, each piece through BPE.
  void EncodePlain(std::string_view text, std::vector<int32_t>* ids) const;

  Normalization normalization_ = Normalization::kNone;
  std::vector<SplitPattern> splits_;
  std::vector<int32_t> template_prefix_;
  std::vector<int32_t> template_suffix_;
  AddedTokenMatcher raw_added_;         // added tokens with normalized=false, matched in the input
  AddedTokenMatcher normalized_added_;  // normalized=true, matched in the normalized text
  std::unique_ptr<BpeModel> bpe_;

  std::string token_bytes_;              // every token's bytes, back to back
  std::vector<uint32_t> token_offsets_;  // [vocab_size + 1]: token i is token_bytes_[offsets[i], offsets[i + 1])
  std::vector<uint8_t> is_special_;      // [vocab_size]
  absl::flat_hash_map<std::string, int32_t> token_to_id_;
};

}  // namespace octet
