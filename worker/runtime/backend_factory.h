// Picks the backend a --device flag names: "cpu", "cuda" (GPU 0), "cuda:N", or "auto" (the first GPU when this
// build has the CUDA backend and the machine a GPU, else the CPU).
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "worker/runtime/backend.h"

namespace octet {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device);

}  // namespace octet
