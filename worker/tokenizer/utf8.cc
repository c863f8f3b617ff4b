// UTF-8 helpers of the tokenizer (see utf8.h).
#include "worker/tokenizer/utf8.h"

namespace octet::utf8 {

size_t PreviousCharStart(std::string_view text, size_t pos) {
  // A well-formed sequence is at most 4 bytes: try the longest candidate start that decodes to exactly `pos`.
  const size_t lowest = pos >= 4 ? pos - 4 : 0;
  for (size_t start = lowest; start < pos - 1; ++start) {
    const auto c = static_cast<unsigned char>(text[start]);
    if ((c & 0xC0) == 0x80) continue;  // a trailing byte cannot start a sequence
    char32_t cp;
    if (start + DecodeAt(text, start, &cp) == pos && cp < kInvalidByteBase) return start;
  }
  return pos - 1;
}

void AppendCodePoint(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < kInvalidByteBase) {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(cp - kInvalidByteBase));
  }
}

size_t AppendLossy(std::string_view bytes, bool at_end, std::string* out) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  size_t run_start = 0;  // start of well-formed bytes not yet appended
  while (i < n) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const Sequence seq = ExamineSequence(s + i, n - i);
    if (seq.kind == SequenceKind::kChar) {
      i += seq.length;
      continue;
    }
    out->append(bytes.data() + run_start, i - run_start);
    if (seq.kind == SequenceKind::kTruncated && !at_end) return i;
    AppendCodePoint(kReplacementChar, out);
    i += seq.length;
    run_start = i;
  }
  out->append(bytes.data() + run_start, n - run_start);
  return n;
}

std::string Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendLossy(bytes, /*at_end=*/true, &out);
  return out;
}

bool IsValid(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    const Sequence seq = ExamineSequence(s + i, bytes.size() - i);
    if (seq.kind != SequenceKind::kChar) return false;
    i += seq.length;
  }
  return true;
}

}  // namespace octet::utf8
