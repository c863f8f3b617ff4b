// NFC (see nfc.h). The slow path decodes to code points, decomposes with canonical reordering as it goes, then
// composes in place (the algorithm of UAX #15's sample code) and re-encodes.
#include "worker/tokenizer/nfc.h"

#include <algorithm>
#include <vector>

#include "worker/tokenizer/unicode_tables.h"
#include "worker/tokenizer/utf8.h"

namespace octet::nfc {
namespace {

// Hangul syllable arithmetic (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

constexpr char32_t kNoComposite = 0;

// Nothing below U+0300 has a non-zero combining class, is NFC_QC No/Maybe, or composes as a second character.
// (Decompositions start lower, at U+00C0.)
constexpr char32_t kFirstInteresting = 0x300;
constexpr char32_t kFirstDecomposable = 0xC0;

bool QuickCheckYes(char32_t cp) {
  if (cp < kFirstInteresting) return true;
  const auto ranges = unicode_tables::NfcQcNotYes();
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](char32_t c, const unicode_tables::CodePointRange& r) { return c < r.first; });
  return it == ranges.begin() || cp > (it - 1)->last;
}

void AppendDecomposed(char32_t cp, std::vector<char32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out->push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= kFirstDecomposable && cp < utf8::kInvalidByteBase) {
    const auto table = unicode_tables::Decompositions();
    auto it = std::lower_bound(table.begin(), table.end(), cp,
                               [](const unicode_tables::Decomposition& d, char32_t c) { return d.code_point < c; });
    if (it != table.end() && it->code_point == cp) {
      const auto data = unicode_tables::DecompositionData().subspan(it->offset, it->length);
      out->insert(out->end(), data.begin(), data.end());
      return;
    }
  }
  out->push_back(cp);
}

// Stable-sorts each run of non-starters by combining class (the Canonical Ordering Algorithm). Runs are short,
// so insertion sort.
void ReorderMarks(std::vector<char32_t>* chars) {
  std::vector<char32_t>& c = *chars;
  for (size_t i = 1; i < c.size(); ++i) {
    const uint8_t cc = CombiningClass(c[i]);
    if (cc == 0) continue;
    size_t j = i;
    while (j > 0) {
      const uint8_t prev = CombiningClass(c[j - 1]);
      if (prev == 0 || prev <= cc) break;
      std::swap(c[j - 1], c[j]);
      --j;
    }
  }
}

char32_t Compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount) {
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  }
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
      second < kTBase + kTCount) {
    return first + (second - kTBase);
  }
  if (first >= utf8::kInvalidByteBase || second >= utf8::kInvalidByteBase) return kNoComposite;
  const uint64_t key = (static_cast<uint64_t>(first) << 21) | second;
  const auto table = unicode_tables::Compositions();
  auto it = std::lower_bound(table.begin(), table.end(), key,
                             [](const unicode_tables::Composition& c, uint64_t k) { return c.key < k; });
  return it != table.end() && it->key == key ? it->composite : kNoComposite;
}

// Canonical composition in place; returns the new length.
size_t ComposeInPlace(std::vector<char32_t>* chars) {
  std::vector<char32_t>& c = *chars;
  if (c.empty()) return 0;
  bool have_starter = CombiningClass(c[0]) == 0;  // leading non-starters compose with nothing
  size_t starter = 0;
  int last_class = 0;
  size_t out = 1;
  for (size_t i = 1; i < c.size(); ++i) {
    const char32_t ch = c[i];
    const int cls = CombiningClass(ch);
    // Composable with the last starter unless blocked: a character kept since then has a class >= this one's.
    if (have_starter && (last_class < cls || last_class == 0)) {
      const char32_t composite = Compose(c[starter], ch);
      if (composite != kNoComposite) {
        c[starter] = composite;
        continue;
      }
    }
    if (cls == 0) {
      starter = out;
      have_starter = true;
    }
    last_class = cls;
    c[out++] = ch;
  }
  return out;
}

}  // namespace

uint8_t CombiningClass(char32_t cp) {
  if (cp < kFirstInteresting || cp >= utf8::kInvalidByteBase) return 0;
  const auto ranges = unicode_tables::CombiningClasses();
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](char32_t c, const unicode_tables::CombiningClassRange& r) { return c < r.first; });
  if (it == ranges.begin() || cp > (it - 1)->last) return 0;
  return (it - 1)->ccc;
}

bool IsQuickNfc(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && static_cast<unsigned char>(text[i]) < 0x80) ++i;
  uint8_t last_class = 0;
  while (i < text.size()) {
    char32_t cp;
    i += utf8::DecodeAt(text, i, &cp);
    if (cp < kFirstInteresting) {
      last_class = 0;
      continue;
    }
    const uint8_t cls = CombiningClass(cp);
    if (cls != 0 && last_class > cls) return false;
    if (!QuickCheckYes(cp)) return false;
    last_class = cls;
  }
  return true;
}

void AppendNormalized(std::string_view text, std::string* out) {
  if (IsQuickNfc(text)) {
    out->append(text);
    return;
  }
  std::vector<char32_t> chars;
  chars.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    i += utf8::DecodeAt(text, i, &cp);
    AppendDecomposed(cp, &chars);
  }
  ReorderMarks(&chars);
  const size_t n = ComposeInPlace(&chars);
  out->reserve(out->size() + text.size());
  for (size_t i = 0; i < n; ++i) utf8::AppendCodePoint(chars[i], out);
}

std::string Normalize(std::string_view text) {
  std::string out;
  AppendNormalized(text, &out);
  return out;
}

}  // namespace octet::nfc
