// Helpers for the GPU tests: device buffers, bf16 on the host, random data, a parallel for over CPU threads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace octet::cuda::testing {

// A device allocation of n T, filled with 0xFF bytes (NaN for floats) so that unwritten outputs show.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) {
    CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)));
    Poison();
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { Upload(host); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void Poison() { CUDA_CHECK(cudaMemset(ptr_, 0xFF, std::max<size_t>(n_, 1) * sizeof(T))); }
  void Upload(const std::vector<T>& host) {
    CUDA_CHECK(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> Download() const {
    std::vector<T> host(n_);
    CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

inline uint16_t Bf16Bits(__nv_bfloat16 v) { return static_cast<__nv_bfloat16_raw>(v).x; }

inline float Bf16ToFloat(__nv_bfloat16 v) { return std::bit_cast<float>(static_cast<uint32_t>(Bf16Bits(v)) << 16); }

// Round to nearest even (NaN stays NaN), as __float2bfloat16_rn.
inline __nv_bfloat16 FloatToBf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  __nv_bfloat16_raw raw;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    raw.x = static_cast<uint16_t>((u >> 16) | 0x40u);
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);
    raw.x = static_cast<uint16_t>(u >> 16);
  }
  return __nv_bfloat16(raw);
}

// Runs body(begin, end) over [0, n) split among the machine's threads.
inline void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 32);
  const int64_t per = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int64_t b = 0; b < n; b += per) pool.emplace_back(body, b, std::min(n, b + per));
  for (auto& t : pool) t.join();
}

}  // namespace octet::cuda::testing
