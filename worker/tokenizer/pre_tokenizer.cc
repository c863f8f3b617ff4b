// Hand-coded pre-tokenizer regexes (see pre_tokenizer.h). Each Match* function returns the end of the match that
// the regex finds at `pos`, alternative by alternative, in the regex's own order; no alternative of any pattern
// can match the empty string, and one always matches, so every call returns an end > pos.
#include "worker/tokenizer/pre_tokenizer.h"

#include "absl/strings/str_cat.h"
#include "worker/tokenizer/unicode.h"
#include "worker/tokenizer/utf8.h"

namespace octet {
namespace {

using unicode::CharClass;

struct Char {
  char32_t cp;
  CharClass cls;
  int len;  // bytes
};

// Word characters: \p{L}, and \p{M} where the scanner tells marks apart (Qwen3.5's [\p{L}\p{M}]).
bool IsWordClass(CharClass cls) { return cls == CharClass::kLetter || cls == CharClass::kMark; }

// Characters of `text` with their classes. kMarks: whether the pattern names \p{M}; if not, marks are kOther.
template <bool kMarks>
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  size_t size() const { return text_.size(); }

  Char At(size_t pos) const {
    const auto b = static_cast<unsigned char>(text_[pos]);
    if (b < 0x80) return {b, unicode::internal::kAsciiClasses[b], 1};
    char32_t cp;
    const int len = utf8::DecodeAt(text_, pos, &cp);
    CharClass cls = unicode::internal::ClassifyNonAscii(cp);
    if constexpr (!kMarks) {
      if (cls == CharClass::kMark) cls = CharClass::kOther;
    }
    return {cp, cls, len};
  }

  // End of the run of characters of class `cls` starting at pos (pos itself if there is none).
  size_t SkipClass(size_t pos, CharClass cls) const {
    while (pos < text_.size()) {
      const Char c = At(pos);
      if (c.cls != cls) break;
      pos += c.len;
    }
    return pos;
  }

  // End of the run of word characters (IsWordClass) starting at pos.
  size_t SkipWord(size_t pos) const {
    while (pos < text_.size()) {
      const Char c = At(pos);
      if (!IsWordClass(c.cls)) break;
      pos += c.len;
    }
    return pos;
  }

  bool IsByte(size_t pos, char c) const { return pos < text_.size() && text_[pos] == c; }

  // Length in bytes of a contraction ('s 't 're 've 'm 'll 'd) at pos, or 0. With `ignore_case`, as Oniguruma
  // folds case: ASCII either case, and U+017F LONG S folds to 's' (no other character folds to these letters).
  size_t Contraction(size_t pos, bool ignore_case) const {
    if (!IsByte(pos, '\'') || pos + 1 >= text_.size()) return 0;
    auto lower = [&](size_t p) -> char32_t {
      if (p >= text_.size()) return 0;
      const Char c = At(p);
      if (!ignore_case) return c.cp;
      if (c.cp >= 'A' && c.cp <= 'Z') return c.cp + ('a' - 'A');
      return c.cp == 0x17F ? U's' : c.cp;
    };
    const char32_t c1 = lower(pos + 1);
    const size_t len1 = 1 + At(pos + 1).len;
    switch (c1) {
      case 's':
      case 't':
      case 'm':
      case 'd':
        return len1;
      case 'r':
      case 'v':
        return lower(pos + len1) == 'e' ? len1 + 1 : 0;
      case 'l':
        return lower(pos + len1) == 'l' ? len1 + 1 : 0;
      default:
        return 0;
    }
  }

  // Whitespace at pos: the regex tails `\s+(?!\S)|\s+` (preceded, for Qwen2, by `\s*[\r\n]+`).
  size_t MatchWhiteSpace(size_t pos, bool newline_alternative) const {
    size_t end = pos;
    size_t last_start = pos;   // start of the run's last character
    size_t after_newline = 0;  // end of the run's last \r or \n, 0 if none
    int count = 0;
    while (end < text_.size()) {
      const Char c = At(end);
      if (c.cls != CharClass::kWhiteSpace) break;
      last_start = end;
      end += c.len;
      ++count;
      if (c.cp == '\r' || c.cp == '\n') after_newline = end;
    }
    // \s*[\r\n]+ : \s* backtracks to the last newline of the run, which [\r\n]+ then takes alone.
    if (newline_alternative && after_newline != 0) return after_newline;
    // \s+(?!\S) : the whole run at the end of the text, else all but its last character (which then stays
    // to prefix the next word); \s+ : a single space before non-space.
    if (end == text_.size() || count == 1) return end;
    return last_start;
  }

 private:
  std::string_view text_;
};

// Qwen2 (kMarks = false), where a word is \p{L}+:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Qwen3.5 (kMarks = true, kQwen3_5Regex) is the same with [\p{L}\p{M}]+ for \p{L}+ and [^\s\p{L}\p{M}\p{N}] for
// [^\s\p{L}\p{N}].
template <bool kMarks>
size_t MatchQwen(const Scanner<kMarks>& s, size_t pos) {
  if (const size_t len = s.Contraction(pos, /*ignore_case=*/true)) return pos + len;
  const Char c0 = s.At(pos);
  // [^\r\n\p{L}\p{N}]?<word>+. A letter at pos starts the word run. So does a mark in Qwen3.5: the optional class
  // may take it too, but the match is then the same run of letters and marks (or, backtracking, the mark alone).
  if (IsWordClass(c0.cls)) return s.SkipWord(pos);
  if (c0.cls != CharClass::kNumber && c0.cp != '\r' && c0.cp != '\n' && pos + c0.len < s.size() &&
      IsWordClass(s.At(pos + c0.len).cls)) {
    return s.SkipWord(pos + c0.len);
  }
  // \p{N}
  if (c0.cls == CharClass::kNumber) return pos + c0.len;
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (Qwen3.5: [^\s\p{L}\p{M}\p{N}], which is kOther there)
  const size_t other = c0.cp == ' ' ? pos + 1 : pos;
  if (other < s.size() && s.At(other).cls == CharClass::kOther) {
    size_t end = s.SkipClass(other, CharClass::kOther);
    while (s.IsByte(end, '\r') || s.IsByte(end, '\n')) ++end;
    return end;
  }
  // c0 is white space: \s*[\r\n]+|\s+(?!\S)|\s+
  return s.MatchWhiteSpace(pos, /*newline_alternative=*/true);
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t MatchGpt2(const Scanner<false>& s, size_t pos) {
  if (const size_t len = s.Contraction(pos, /*ignore_case=*/false)) return pos + len;
  const Char c0 = s.At(pos);
  size_t start = pos;
  CharClass cls = c0.cls;
  if (c0.cp == ' ' && pos + 1 < s.size()) {  // ' ?' then a run of letters, numbers or others
    const CharClass next = s.At(pos + 1).cls;
    if (next != CharClass::kWhiteSpace) {
      start = pos + 1;
      cls = next;
    }
  }
  if (cls != CharClass::kWhiteSpace) return s.SkipClass(start, cls);
  return s.MatchWhiteSpace(pos, /*newline_alternative=*/false);
}

}  // namespace

absl::StatusOr<SplitPattern> SplitPatternFromRegex(std::string_view regex) {
  if (regex == kQwen2Regex) return SplitPattern::kQwen2;
  if (regex == kGpt2Regex) return SplitPattern::kGpt2;
  if (regex == kQwen3_5Regex) return SplitPattern::kQwen3_5;
  return absl::UnimplementedError(
      absl::StrCat("pre_tokenizer: Split regex is not one octet implements (the Qwen2, Qwen3.5 or GPT-2 pattern): ",
                   std::string(regex)));
}

void SplitText(SplitPattern pattern, std::string_view text, std::vector<std::string_view>* pieces) {
  // `match` is a lambda rather than a function pointer so that each loop inlines its matcher.
  auto split = [&](const auto& scanner, auto match) {
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t end = match(scanner, pos);
      pieces->push_back(text.substr(pos, end - pos));
      pos = end;
    }
  };
  switch (pattern) {
    case SplitPattern::kQwen2:
      split(Scanner<false>(text), [](const auto& s, size_t pos) { return MatchQwen(s, pos); });
      return;
    case SplitPattern::kQwen3_5:
      split(Scanner<true>(text), [](const auto& s, size_t pos) { return MatchQwen(s, pos); });
      return;
    case SplitPattern::kGpt2:
      split(Scanner<false>(text), [](const auto& s, size_t pos) { return MatchGpt2(s, pos); });
      return;
  }
}

}  // namespace octet
