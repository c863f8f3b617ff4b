// PEM files for TLS, read and checked once at start-up with OpenSSL, so that a wrong path, a file that is not PEM
// or a key that does not belong to its certificate is reported by flag and file before anything listens. Errors
// never quote the files' contents.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace octet::router::security {

// The contents of `path`, which must hold at least one PEM certificate. `flag` names it in errors.
absl::StatusOr<std::string> ReadCertificates(absl::string_view flag, const std::string& path);

struct KeyPair {
  std::string cert_chain;   // PEM: the certificate, then any intermediates
  std::string private_key;  // PEM
};

// A certificate chain and the private key of its first certificate; both flags must be given, or neither (an
// empty KeyPair).
absl::StatusOr<KeyPair> ReadKeyPair(absl::string_view cert_flag, const std::string& cert_path,
                                    absl::string_view key_flag, const std::string& key_path);

// Server credentials for a gRPC port: TLS with `pair` (insecure when it is empty).
std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const KeyPair& pair);

}  // namespace octet::router::security
