// UTF-8 for the tokenizer: a decoder that never fails (each ill-formed byte comes back on its own as a code point
// above U+10FFFF, so byte-level BPE still sees and round-trips every input byte), an encoder that writes such
// bytes back unchanged, and the lossy repair that turns arbitrary bytes into valid UTF-8 for output text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace octet::utf8 {

// Code points >= kInvalidByteBase stand for one ill-formed input byte: kInvalidByteBase + byte.
inline constexpr char32_t kInvalidByteBase = 0x110000;
inline constexpr char32_t kReplacementChar = 0xFFFD;

enum class SequenceKind : uint8_t {
  kChar,       // a well-formed sequence
  kIllFormed,  // `length` bytes form a maximal ill-formed subpart (Unicode 3.9, "U+FFFD substitution")
  kTruncated,  // `length` bytes are a well-formed prefix that the end of the input cut short
};

struct Sequence {
  int length;           // >= 1
  char32_t code_point;  // valid for kChar only
  SequenceKind kind;
};

// Examines the bytes at s[0..avail), avail >= 1, by Table 3-7 of the Unicode standard.
inline Sequence ExamineSequence(const unsigned char* s, size_t avail) {
  const unsigned b0 = s[0];
  if (b0 < 0x80) return {1, b0, SequenceKind::kChar};
  int trail;
  char32_t cp;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first trailing byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    trail = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    trail = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    trail = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {1, 0, SequenceKind::kIllFormed};
  }
  for (int i = 1; i <= trail; ++i) {
    if (static_cast<size_t>(i) >= avail) return {i, 0, SequenceKind::kTruncated};
    const unsigned b = s[i];
    if (b < lo || b > hi) return {i, 0, SequenceKind::kIllFormed};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {trail + 1, cp, SequenceKind::kChar};
}

// Decodes one code point at text[pos] (pos < text.size()) and returns its length in bytes. Ill-formed or
// truncated input yields length 1 and kInvalidByteBase + that byte.
inline int DecodeAt(std::string_view text, size_t pos, char32_t* code_point) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data()) + pos;
  if (s[0] < 0x80) {
    *code_point = s[0];
    return 1;
  }
  const Sequence seq = ExamineSequence(s, text.size() - pos);
  if (seq.kind == SequenceKind::kChar) {
    *code_point = seq.code_point;
    return seq.length;
  }
  *code_point = kInvalidByteBase + s[0];
  return 1;
}

// Start of the code point that ends at text[pos - 1] (pos > 0), consistent with DecodeAt.
size_t PreviousCharStart(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of code_point; kInvalidByteBase + b appends the raw byte b.
void AppendCodePoint(char32_t code_point, std::string* out);

// Appends `bytes` as valid UTF-8, each maximal ill-formed subpart replaced by U+FFFD (what Rust's
// String::from_utf8_lossy and Python's errors="replace" produce). Unless `at_end`, a truncated sequence at the
// end is left unconsumed so the caller can complete it with later bytes. Returns the number of bytes consumed.
size_t AppendLossy(std::string_view bytes, bool at_end, std::string* out);

// `bytes` as valid UTF-8, ill-formed parts replaced by U+FFFD.
std::string Lossy(std::string_view bytes);

bool IsValid(std::string_view bytes);

}  // namespace octet::utf8
