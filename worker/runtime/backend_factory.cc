#include "worker/runtime/backend_factory.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "worker/runtime/cpu_backend.h"
#ifdef OCTET_HAVE_CUDA
#include "worker/runtime/cuda_backend.h"
#endif

namespace octet {

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(std::string_view device) {
  if (device == "cpu") return std::make_unique<CpuBackend>();
  const bool automatic = device == "auto";
  int index = 0;
  if (!automatic && device != "cuda") {
    const std::string name(device);
    if (!absl::StartsWith(name, "cuda:") || !absl::SimpleAtoi(name.substr(5), &index) || index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--device must be auto, cpu, cuda or cuda:N, got \"", std::string(device), "\""));
    }
  }
#ifdef OCTET_HAVE_CUDA
  if (CudaDeviceAvailable()) return std::make_unique<CudaBackend>(CudaBackendOptions{.device = index});
  if (automatic) return std::make_unique<CpuBackend>();
  return absl::FailedPreconditionError(absl::StrCat("--device ", std::string(device), ": no CUDA device is visible"));
#else
  if (automatic) return std::make_unique<CpuBackend>();
  return absl::FailedPreconditionError(
      absl::StrCat("--device ", std::string(device), ": this build has no CUDA backend (configure with nvcc present)"));
#endif
}

}  // namespace octet
