// GPT-2 bytes_to_unicode (see byte_level.h).
#include "worker/tokenizer/byte_level.h"

#include <array>

#include "worker/tokenizer/utf8.h"

namespace octet::byte_level {
namespace {

constexpr bool IsPrintable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

constexpr std::array<char32_t, 256> MakeByteToChar() {
  std::array<char32_t, 256> t{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) t[b] = IsPrintable(b) ? static_cast<char32_t>(b) : next++;
  return t;
}

constexpr std::array<char32_t, 256> kByteToChar = MakeByteToChar();

// Inverse over U+0000..U+0143, the only characters the alphabet uses; -1 for the others.
constexpr std::array<int16_t, 0x144> MakeCharToByte() {
  std::array<int16_t, 0x144> t{};
  for (auto& v : t) v = -1;
  for (int b = 0; b < 256; ++b) t[kByteToChar[b]] = static_cast<int16_t>(b);
  return t;
}

constexpr std::array<int16_t, 0x144> kCharToByte = MakeCharToByte();

}  // namespace

char32_t ByteToChar(uint8_t b) { return kByteToChar[b]; }

std::string Encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::AppendCodePoint(kByteToChar[static_cast<uint8_t>(c)], &out);
  return out;
}

bool Decode(std::string_view token, std::string* bytes) {
  bytes->clear();
  for (size_t i = 0; i < token.size();) {
    char32_t cp;
    i += utf8::DecodeAt(token, i, &cp);
    if (cp >= kCharToByte.size() || kCharToByte[cp] < 0) return false;
    bytes->push_back(static_cast<char>(kCharToByte[cp]));
  }
  return true;
}

std::string DecodeOrKeep(std::string_view token) {
  std::string bytes;
  if (!Decode(token, &bytes)) bytes.assign(token);
  return bytes;
}

}  // namespace octet::byte_level
