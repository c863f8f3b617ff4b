// octet's C++ client library: a channel to a router (or a worker) and the Generation calls as blocking functions.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "octet/v1/generation.grpc.pb.h"

namespace octet::client {

struct ConnectOptions {
  // How long Connect waits for the connection to come up; zero skips the wait (the first call connects).
  absl::Duration timeout = absl::Seconds(5);
  // TLS, on when `tls` is set or a CA file is given; plaintext otherwise.
  bool tls = false;
  std::string tls_ca_file;    // PEM CA certificates the server's certificate must chain to (empty: the system's)
  std::string tls_cert_file;  // PEM client certificate, for servers that require one (with tls_key_file)
  std::string tls_key_file;
  // Sent as `authorization: Bearer <api_key>` on every call of the channel (empty: no key).
  std::string api_key;
};

struct CallOptions {
  // The call's deadline, counted from when it starts; it reaches the worker through the router.
  absl::Duration timeout = absl::InfiniteDuration();
};

// One channel; calls may run concurrently from several threads.
class Client {
 public:
  // Called with each streamed message as it arrives; return false to cancel the rest of the stream.
  using ChunkCallback = std::function<bool(const v1::GenerateResponse& chunk)>;

  // Opens a channel to HOST:PORT (or any gRPC target) (MakeChannel) and waits up to options.timeout for it to
  // connect. UNAVAILABLE "cannot connect to ADDRESS within T" when it does not.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(std::string_view address, const ConnectOptions& options = {});
  explicit Client(std::shared_ptr<grpc::Channel> channel);

  // Streams a completion, calling on_chunk for every message in order. Returns the call's status: OK after the
  // last message, the server's error otherwise (messages received before it were already passed to on_chunk),
  // CANCELLED when on_chunk returned false.
  absl::Status Generate(const v1::GenerateRequest& request, const ChunkCallback& on_chunk,
                        const CallOptions& options = {});
  // The assistant's next turn of a conversation (the router applies the chat template), streamed as Generate is.
  absl::Status Chat(const v1::ChatRequest& request, const ChunkCallback& on_chunk, const CallOptions& options = {});
  absl::StatusOr<std::vector<int32_t>> Tokenize(std::string_view text, bool add_special_tokens,
                                                const CallOptions& options = {});
  absl::StatusOr<v1::ModelInfo> GetModelInfo(const CallOptions& options = {});

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Generation::Stub> stub_;
};

// A channel to `address` with the options' TLS and API key, not yet connected. INVALID_ARGUMENT or NOT_FOUND when a
// TLS file cannot be read or the client certificate comes without its key (or the other way round).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(std::string_view address, const ConnectOptions& options);

// The API key in `path`: its first line that is neither blank nor a '#' comment, without surrounding whitespace.
absl::StatusOr<std::string> ReadApiKeyFile(const std::string& path);

// gRPC and absl share the canonical codes; the message is kept as is.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace octet::client
