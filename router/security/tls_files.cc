#include "router/security/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace octet::router::security {
namespace {

absl::StatusOr<std::string> ReadFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct PKeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

// An encrypted key is refused rather than asked for on the terminal (OpenSSL's default when no callback is given).
int NoPassphrase(char*, int, int, void*) { return -1; }

std::unique_ptr<BIO, BioDeleter> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The first certificate of `pem`, or null.
std::unique_ptr<X509, X509Deleter> FirstCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  std::unique_ptr<X509, X509Deleter> cert(PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase, nullptr));
  ERR_clear_error();
  return cert;
}

}  // namespace

absl::StatusOr<std::string> ReadCertificates(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFile(flag, path);
  if (!pem.ok()) return pem.status();
  if (FirstCertificate(*pem) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " holds no PEM certificate"));
  }
  return pem;
}

absl::StatusOr<KeyPair> ReadKeyPair(absl::string_view cert_flag, const std::string& cert_path,
                                    absl::string_view key_flag, const std::string& key_path) {
  if (cert_path.empty() != key_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(cert_flag, " and ", key_flag, " go together: give both or neither"));
  }
  KeyPair pair;
  if (cert_path.empty()) return pair;
  absl::StatusOr<std::string> cert_chain = ReadCertificates(cert_flag, cert_path);
  if (!cert_chain.ok()) return cert_chain.status();
  absl::StatusOr<std::string> private_key = ReadFile(key_flag, key_path);
  if (!private_key.ok()) return private_key.status();
  auto bio = MemoryBio(*private_key);
  std::unique_ptr<EVP_PKEY, PKeyDeleter> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(key_flag, ": ", key_path, " holds no unencrypted PEM private key"));
  }
  std::unique_ptr<X509, X509Deleter> cert = FirstCertificate(*cert_chain);
  const bool matches = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!matches) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_flag, ": ", key_path, " is not the key of the certificate in ", cert_path));
  }
  pair.cert_chain = *std::move(cert_chain);
  pair.private_key = *std::move(private_key);
  return pair;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const KeyPair& pair) {
  if (pair.cert_chain.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({.private_key = pair.private_key, .cert_chain = pair.cert_chain});
  return grpc::SslServerCredentials(options);
}

}  // namespace octet::router::security
