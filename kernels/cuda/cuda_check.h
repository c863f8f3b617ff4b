// CUDA error checks: CUDA_CHECK aborts with file:line (start-up, tests, benchmarks); launchers return cudaError_t.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

// For start-up code, tests and benchmarks: a failed CUDA call is a programmer or environment error, not a request
// error, so it aborts with the call, the error and file:line.
#define CUDA_CHECK(expr)                                                                                               \
  do {                                                                                                                 \
    const cudaError_t octet_cuda_err_ = (expr);                                                                        \
    if (octet_cuda_err_ != cudaSuccess) {                                                                              \
      std::fprintf(stderr, "%s:%d: CUDA error %s (%s) in %s\n", __FILE__, __LINE__, cudaGetErrorName(octet_cuda_err_), \
                   cudaGetErrorString(octet_cuda_err_), #expr);                                                        \
      std::abort();                                                                                                    \
    }                                                                                                                  \
  } while (0)

// For launchers (which return cudaError_t): return the error of a failed CUDA call to the caller.
#define CUDA_RETURN_IF_ERROR(expr)                              \
  do {                                                          \
    const cudaError_t octet_cuda_err_ = (expr);                 \
    if (octet_cuda_err_ != cudaSuccess) return octet_cuda_err_; \
  } while (0)
