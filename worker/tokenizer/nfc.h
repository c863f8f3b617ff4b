// Unicode Normalization Form C (UAX #15): canonical decomposition, canonical ordering, canonical composition,
// with Hangul syllables handled algorithmically and the rest from the generated tables in unicode_tables.cc.
// Like HF tokenizers' NFC, the tables are those of Unicode 9.0: characters assigned later are starters that
// neither decompose nor compose. Ill-formed UTF-8 bytes pass through unchanged, as such starters too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace octet::nfc {

// Canonical_Combining_Class of a code point (0 for starters and for anything unassigned).
uint8_t CombiningClass(char32_t code_point);

// True when `text` is certainly already in NFC: all ASCII, or every character NFC_Quick_Check=Yes with the
// combining marks in canonical order. False means "maybe not"; Normalize decides.
bool IsQuickNfc(std::string_view text);

// Appends NFC(text) to *out; copies `text` unchanged when IsQuickNfc(text).
void AppendNormalized(std::string_view text, std::string* out);

std::string Normalize(std::string_view text);

}  // namespace octet::nfc
