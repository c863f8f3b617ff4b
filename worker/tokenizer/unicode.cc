// Character classes from the generated range tables: ASCII from the constant table in unicode.h, the rest of
// the BMP from a table built once on first use (64 KiB), supplementary planes by binary search.
#include "worker/tokenizer/unicode.h"

#include <algorithm>
#include <array>

#include "absl/types/span.h"
#include "worker/tokenizer/unicode_tables.h"

namespace octet::unicode {
namespace {

using unicode_tables::CodePointRange;

bool InRanges(absl::Span<const CodePointRange> ranges, char32_t cp) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](char32_t c, const CodePointRange& r) { return c < r.first; });
  return it != ranges.begin() && cp <= (it - 1)->last;
}

CharClass ClassifyBySearch(char32_t cp) {
  if (InRanges(unicode_tables::Letters(), cp)) return CharClass::kLetter;
  if (InRanges(unicode_tables::Numbers(), cp)) return CharClass::kNumber;
  if (InRanges(unicode_tables::Marks(), cp)) return CharClass::kMark;
  if (InRanges(unicode_tables::WhiteSpace(), cp)) return CharClass::kWhiteSpace;
  return CharClass::kOther;
}

using BmpTable = std::array<CharClass, 0x10000>;

const BmpTable& Bmp() {
  static const BmpTable* const table = [] {
    auto* t = new BmpTable();
    t->fill(CharClass::kOther);
    auto fill = [t](absl::Span<const CodePointRange> ranges, CharClass cls) {
      for (const CodePointRange& r : ranges) {
        for (char32_t cp = r.first; cp <= r.last && cp < 0x10000; ++cp) (*t)[cp] = cls;
      }
    };
    fill(unicode_tables::Letters(), CharClass::kLetter);
    fill(unicode_tables::Numbers(), CharClass::kNumber);
    fill(unicode_tables::Marks(), CharClass::kMark);
    fill(unicode_tables::WhiteSpace(), CharClass::kWhiteSpace);
    return t;
  }();
  return *table;
}

}  // namespace

namespace internal {

CharClass ClassifyNonAscii(char32_t cp) {
  if (cp < 0x10000) return Bmp()[cp];
  if (cp > 0x10FFFF) return CharClass::kOther;
  return ClassifyBySearch(cp);
}

}  // namespace internal
}  // namespace octet::unicode
