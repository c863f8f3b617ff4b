#include "router/http/civetweb_openssl.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"

namespace octet::router::http {

// Defined in the build's civetweb_openssl_aliases.cc (embed_openssl_aliases.cmake): the two objects' bytes.
extern const unsigned char kLibsslAlias[];
extern const size_t kLibsslAliasSize;
extern const unsigned char kLibcryptoAlias[];
extern const size_t kLibcryptoAliasSize;

namespace {

// Writes the object to an anonymous in-memory file and loads it through /proc/self/fd. It stays loaded for the life
// of the process (civetweb keeps using it).
absl::Status LoadFromMemory(const char* soname, const unsigned char* bytes, size_t size) {
  const int fd = memfd_create(soname, MFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("memfd_create: ", std::strerror(errno)));
  size_t written = 0;
  while (written < size) {
    const ssize_t n = write(fd, bytes + written, size - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("cannot write the ", soname, " alias: ", std::strerror(error)));
    }
    written += static_cast<size_t>(n);
  }
  const std::string path = absl::StrCat("/proc/self/fd/", fd);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  close(fd);  // the loader has mapped it
  if (handle == nullptr) {
    const char* error = dlerror();
    return absl::InternalError(absl::StrCat("cannot load the ", soname, " alias: ", error != nullptr ? error : "?"));
  }
  return absl::OkStatus();
}

absl::Status Prepare() {
  if (absl::Status s = LoadFromMemory("libssl.so", kLibsslAlias, kLibsslAliasSize); !s.ok()) return s;
  if (absl::Status s = LoadFromMemory("libcrypto.so", kLibcryptoAlias, kLibcryptoAliasSize); !s.ok()) return s;
  // What civetweb will get: the alias, unless something loaded the real library under that name before us.
  void* libssl = dlopen("libssl.so", RTLD_LAZY | RTLD_NOLOAD);
  const bool complete = libssl != nullptr && dlsym(libssl, "SSL_get_peer_certificate") != nullptr;
  if (libssl != nullptr) dlclose(libssl);
  if (!complete)
    return absl::FailedPreconditionError("libssl.so resolves to a library without SSL_get_peer_certificate");
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareCivetwebOpenSsl() {
  static std::once_flag once;
  static absl::Status* status = nullptr;
  std::call_once(once, [] { status = new absl::Status(Prepare()); });
  return *status;
}

}  // namespace octet::router::http
