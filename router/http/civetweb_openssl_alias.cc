// The bodies of the "libssl.so" and "libcrypto.so" aliases that civetweb_openssl.cc loads (see there): the libssl
// one adds the function OpenSSL 3 has only as a macro; otherwise the aliases are just their dependencies.
#if defined(OCTET_LIBSSL_ALIAS)
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
extern "C" __attribute__((visibility("default"))) X509* SSL_get_peer_certificate(const SSL* ssl) {
  return SSL_get1_peer_certificate(ssl);
}
#endif
