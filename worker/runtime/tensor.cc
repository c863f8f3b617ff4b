#include "worker/runtime/tensor.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"

namespace octet {

std::string ShapeToString(const Shape& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

int64_t ShapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor::Tensor(std::shared_ptr<Buffer> buffer, DType dtype, Shape shape, size_t byte_offset)
    : buffer_(std::move(buffer)), dtype_(dtype), shape_(std::move(shape)), byte_offset_(byte_offset) {
  OCTET_CHECK(byte_offset_ + nbytes() <= buffer_->size())
      << "tensor " << ShapeToString(shape_) << " at offset " << byte_offset_ << " overruns its buffer of "
      << buffer_->size() << " bytes";
}

Tensor Tensor::View(Shape shape) const {
  OCTET_CHECK(ShapeNumel(shape) == numel())
      << "cannot view " << ShapeToString(shape_) << " as " << ShapeToString(shape);
  return Tensor(buffer_, dtype_, std::move(shape), byte_offset_);
}

Tensor Tensor::Rows(int64_t begin, int64_t end) const {
  OCTET_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= dim(0))
      << "rows [" << begin << ", " << end << ") of " << ShapeToString(shape_);
  Shape s = shape_;
  s[0] = end - begin;
  const size_t row_bytes = (dim(0) == 0) ? 0 : nbytes() / static_cast<size_t>(dim(0));
  return Tensor(buffer_, dtype_, std::move(s), byte_offset_ + static_cast<size_t>(begin) * row_bytes);
}

std::string Tensor::DebugString() const {
  return absl::StrCat(std::string(DTypeName(dtype_)), ShapeToString(shape_),
                      device() == Device::kCpu ? "@cpu" : "@cuda");
}

Tensor HostTensor(DType dtype, Shape shape) {
  const size_t bytes = static_cast<size_t>(ShapeNumel(shape)) * DTypeSize(dtype);
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  OCTET_CHECK(p != nullptr) << "out of host memory allocating " << bytes << " bytes";
  auto buffer = std::make_shared<Buffer>(p, bytes, Device::kCpu, [](void* q) { std::free(q); });
  return Tensor(std::move(buffer), dtype, std::move(shape));
}

}  // namespace octet
