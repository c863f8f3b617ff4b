#include "router/security/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace octet::router::security {
namespace {

constexpr absl::string_view kBearer = "bearer";

bool IsKeyChar(char c) { return c > ' ' && c != '\x7f'; }  // printable, no whitespace

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseApiKeys(absl::string_view contents) {
  std::vector<std::string> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);  // also drops the '\r' of CRLF files
    if (line.empty() || line.front() == '#') continue;
    for (char c : line) {
      if (!IsKeyChar(c)) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_number, ": a key must not contain whitespace or control characters"));
      }
    }
    keys.emplace_back(line);
  }
  return keys;
}

std::optional<absl::string_view> BearerToken(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.size() <= kBearer.size() || !absl::StartsWithIgnoreCase(authorization, kBearer) ||
      authorization[kBearer.size()] != ' ') {
    return std::nullopt;
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(authorization.substr(kBearer.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  uint8_t digest_a[SHA256_DIGEST_LENGTH];
  uint8_t digest_b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), digest_a);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), digest_b);
  return CRYPTO_memcmp(digest_a, digest_b, SHA256_DIGEST_LENGTH) == 0;
}

absl::StatusOr<ApiKeySet> ApiKeySet::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the API key file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string contents = buffer.str();
  absl::StatusOr<std::vector<std::string>> keys = ParseApiKeys(contents);
  OPENSSL_cleanse(contents.data(), contents.size());
  if (!keys.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", keys.status().message()));
  if (keys->empty()) return absl::InvalidArgumentError(absl::StrCat(path, " holds no API key"));
  ApiKeySet set(*keys);
  for (std::string& key : *keys) OPENSSL_cleanse(key.data(), key.size());
  return set;
}

ApiKeySet::ApiKeySet(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) Add(key);
}

void ApiKeySet::Add(absl::string_view key) { digests_.push_back(Hash(key)); }

ApiKeySet::Digest ApiKeySet::Hash(absl::string_view key) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest.data());
  return digest;
}

bool ApiKeySet::Contains(absl::string_view key) const {
  const Digest candidate = Hash(key);
  int matches = 0;
  for (const Digest& digest : digests_) {
    matches |= static_cast<int>(CRYPTO_memcmp(candidate.data(), digest.data(), digest.size()) == 0);
  }
  return matches != 0;
}

bool ApiKeySet::Authorizes(absl::string_view authorization) const {
  const std::optional<absl::string_view> token = BearerToken(authorization);
  // A missing token is hashed and compared too, so that it takes the time of a wrong one.
  return Contains(token.value_or(absl::string_view())) && token.has_value();
}

}  // namespace octet::router::security
