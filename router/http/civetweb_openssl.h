// Lets the system's civetweb serve HTTPS with OpenSSL 3.
//
// civetweb (Debian 12's 1.15, and 1.16 too) loads OpenSSL at run time: dlopen("libssl.so") and
// dlopen("libcrypto.so"), then dlsym for every function it uses. One of them, SSL_get_peer_certificate, is only a
// macro for SSL_get1_peer_certificate in OpenSSL 3, so dlsym finds nothing: 1.15 starts anyway and calls the null
// pointer as soon as a client completes a handshake (the process dies), 1.16 refuses to start (civetweb issue
// #1334). The unversioned names also exist only where libssl-dev is installed.
//
// The router therefore carries two small shared objects (built next to this file, embedded at build time) and loads
// them from memory before civetweb loads OpenSSL: one with the SONAME "libssl.so" that links libssl.so.3 and
// defines SSL_get_peer_certificate as SSL_get1_peer_certificate (the same contract: a new reference the caller
// frees, which civetweb does), and one with the SONAME "libcrypto.so" that links libcrypto.so.3. The dynamic loader
// answers dlopen of a name with an object already loaded under that SONAME, and dlsym on it searches the object and
// then its dependencies, so civetweb finds OpenSSL 3's functions and the missing one.
#pragma once

#include "absl/status/status.h"

namespace octet::router::http {

// Loads the two objects (once per process; later calls return the first result). Call before civetweb starts a
// TLS port.
absl::Status PrepareCivetwebOpenSsl();

}  // namespace octet::router::http
