// GPT-2's byte-level alphabet (bytes_to_unicode): each of the 256 byte values is shown as one printable
// character, so vocabularies of byte sequences can be written as text. tokenizer.json vocab entries, merges and
// the ByteLevel decoder all use this alphabet; octet's BPE runs on raw bytes and converts only at load.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace octet::byte_level {

// The character that stands for byte b: b itself for '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF, otherwise
// U+0100 + (index of b among the remaining 68 bytes).
char32_t ByteToChar(uint8_t b);

// The byte-level text of raw bytes (the ByteLevel pre-tokenizer's output).
std::string Encode(std::string_view bytes);

// The raw bytes of a byte-level token, or false (leaving *bytes unspecified) when the token holds a character
// outside the alphabet. The ByteLevel decoder then keeps such a token's UTF-8 as it is.
bool Decode(std::string_view token, std::string* bytes);

// Decode, falling back to the token's own UTF-8 exactly like Hugging Face's ByteLevel decoder.
std::string DecodeOrKeep(std::string_view token);

}  // namespace octet::byte_level
