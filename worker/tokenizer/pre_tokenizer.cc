// Hand-coded pre-tokenizer regexes (see pre_tokenizer.h). Each Match* function returns the end of the match that
// the regex finds at `pos`, alternative by alternative, in the regex's own order; no alternative of either
// pattern can match the empty string, and one always matches, so every call returns an end > pos.
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

class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  size_t size() const { return text_.size(); }

  Char At(size_t pos) const {
    const auto b = static_cast<unsigned char>(text_[pos]);
    if (b < 0x80) return {b, unicode::internal::kAsciiClasses[b], 1};
    char32_t cp;
    const int len = utf8::DecodeAt(text_, pos, &cp);
    return {cp, unicode::internal::ClassifyNonAscii(cp), len};
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

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t MatchQwen2(const Scanner& s, size_t pos) {
  if (const size_t len = s.Contraction(pos, /*ignore_case=*/true)) return pos + len;
  const Char c0 = s.At(pos);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c0.cls == CharClass::kLetter) return s.SkipClass(pos, CharClass::kLetter);
  if (c0.cls != CharClass::kNumber && c0.cp != '\r' && c0.cp != '\n' && pos + c0.len < s.size() &&
      s.At(pos + c0.len).cls == CharClass::kLetter) {
    return s.SkipClass(pos + c0.len, CharClass::kLetter);
  }
  // \p{N}
  if (c0.cls == CharClass::kNumber) return pos + c0.len;
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
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
size_t MatchGpt2(const Scanner& s, size_t pos) {
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
  return absl::UnimplementedError(absl::StrCat(
      "pre_tokenizer: Split regex is not one octet implements (the Qwen2 or GPT-2 pattern): ", std::string(regex)));
}

void SplitText(SplitPattern pattern, std::string_view text, std::vector<std::string_view>* pieces) {
  const Scanner scanner(text);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = pattern == SplitPattern::kQwen2 ? MatchQwen2(scanner, pos) : MatchGpt2(scanner, pos);
    pieces->push_back(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace octet
