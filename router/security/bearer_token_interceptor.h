// A client interceptor factory that adds `authorization: Bearer <token>` to every call of a channel, for channels
// whose callers hold no key of their own (the HTTP front end's in-process channel into the router).
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <memory>
#include <string>

namespace octet::router::security {

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> MakeBearerTokenInterceptorFactory(
    std::string token);

// 32 random bytes from OpenSSL's CSPRNG, hex-encoded: a token that never leaves the process.
std::string RandomToken();

}  // namespace octet::router::security
