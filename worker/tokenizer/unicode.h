// Unicode character properties the pre-tokenizer regexes and added-token stripping test: \p{L}, \p{N}, \p{M} and
// \s (White_Space), from the generated tables in unicode_tables.cc. Code points above U+10FFFF (utf8.h's stand-ins
// for ill-formed bytes) have none of the properties.
#pragma once

#include <array>
#include <cstdint>

namespace octet::unicode {

// The classes the regexes distinguish; every code point is in exactly one. Only the Qwen3.5 pattern tells marks
// apart; for the others a kMark is a kOther.
enum class CharClass : uint8_t {
  kOther = 0,       // [^\s\p{L}\p{M}\p{N}]
  kLetter = 1,      // \p{L}
  kNumber = 2,      // \p{N}
  kWhiteSpace = 3,  // \s
  kMark = 4,        // \p{M} (combining marks: Mn, Mc, Me)
};

namespace internal {

constexpr std::array<CharClass, 128> MakeAsciiClasses() {
  std::array<CharClass, 128> t{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      t[c] = CharClass::kNumber;
    } else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
      t[c] = CharClass::kWhiteSpace;
    } else {
      t[c] = CharClass::kOther;
    }
  }
  return t;
}

inline constexpr std::array<CharClass, 128> kAsciiClasses = MakeAsciiClasses();

CharClass ClassifyNonAscii(char32_t code_point);

}  // namespace internal

inline CharClass Classify(char32_t code_point) {
  return code_point < 128 ? internal::kAsciiClasses[code_point] : internal::ClassifyNonAscii(code_point);
}

inline bool IsLetter(char32_t cp) { return Classify(cp) == CharClass::kLetter; }
inline bool IsNumber(char32_t cp) { return Classify(cp) == CharClass::kNumber; }
inline bool IsMark(char32_t cp) { return Classify(cp) == CharClass::kMark; }
inline bool IsWhiteSpace(char32_t cp) { return Classify(cp) == CharClass::kWhiteSpace; }

}  // namespace octet::unicode
