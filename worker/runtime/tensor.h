// Tensor: a typed, shaped view of memory owned by a Buffer on some device. Views share the buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "worker/runtime/dtype.h"

namespace octet {

enum class Device : uint8_t { kCpu, kCuda };

using Shape = absl::InlinedVector<int64_t, 4>;

std::string ShapeToString(const Shape& shape);
int64_t ShapeNumel(const Shape& shape);

// A block of memory on one device; frees itself with the deleter it was made with.
class Buffer {
 public:
  Buffer(void* ptr, size_t size, Device device, std::function<void(void*)> deleter)
      : ptr_(ptr), size_(size), device_(device), deleter_(std::move(deleter)) {}
  ~Buffer() {
    if (deleter_) deleter_(ptr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* ptr() const { return ptr_; }
  size_t size() const { return size_; }
  Device device() const { return device_; }

 private:
  void* ptr_;
  size_t size_;
  Device device_;
  std::function<void(void*)> deleter_;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<Buffer> buffer, DType dtype, Shape shape, size_t byte_offset = 0);

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  // Size of dimension i; negative i counts from the end.
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int64_t numel() const { return ShapeNumel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * DTypeSize(dtype_); }
  Device device() const { return buffer_ ? buffer_->device() : Device::kCpu; }

  void* data() const { return static_cast<std::byte*>(buffer_->ptr()) + byte_offset_; }
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data());
  }

  // The same memory with another shape of the same number of elements.
  Tensor View(Shape shape) const;
  // Rows [begin, end) of dimension 0.
  Tensor Rows(int64_t begin, int64_t end) const;

  std::string DebugString() const;

 private:
  std::shared_ptr<Buffer> buffer_;
  DType dtype_ = DType::kF32;
  Shape shape_;
  size_t byte_offset_ = 0;
};

// A tensor in freshly allocated, 64-byte aligned host memory.
Tensor HostTensor(DType dtype, Shape shape);

}  // namespace octet
