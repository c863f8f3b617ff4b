// API keys: the --api-key-file format, the `Authorization: Bearer` header, and the check of a presented key against
// the accepted ones. Keys are kept only as SHA-256 digests and compared in constant time; no error or log line ever
// contains a key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octet::router::security {

// The keys of an --api-key-file: one a line, surrounding whitespace trimmed; blank lines and lines whose first
// non-blank character is '#' are skipped. A key may not contain whitespace or control characters. Errors name the
// line number and the rule, never the line's text.
absl::StatusOr<std::vector<std::string>> ParseApiKeys(absl::string_view contents);

// The token of an `Authorization` header value "Bearer <token>" (the scheme in any case, RFC 7235), or nullopt
// when the value is not a bearer credential.
std::optional<absl::string_view> BearerToken(absl::string_view authorization);

// Whether a == b, in time that depends on neither their contents nor their lengths: both are hashed with SHA-256
// and the digests compared with CRYPTO_memcmp.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class ApiKeySet {
 public:
  // Reads and parses `path` (see ParseApiKeys); an unreadable file or one without keys is an error.
  static absl::StatusOr<ApiKeySet> LoadFile(const std::string& path);

  ApiKeySet() = default;
  explicit ApiKeySet(const std::vector<std::string>& keys);
  void Add(absl::string_view key);

  size_t size() const { return digests_.size(); }
  // Whether `key` is one of the set. Every entry is compared, each in constant time, so the time taken says
  // nothing about which entry (if any) matched.
  bool Contains(absl::string_view key) const;
  // Whether an `Authorization` header value carries a key of the set ("Bearer <key>").
  bool Authorizes(absl::string_view authorization) const;

 private:
  using Digest = std::array<uint8_t, 32>;  // SHA-256
  static Digest Hash(absl::string_view key);

  std::vector<Digest> digests_;
};

}  // namespace octet::router::security
