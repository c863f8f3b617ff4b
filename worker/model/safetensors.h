// Read-only, validated view of one .safetensors file, memory-mapped.
//
// Format: 8-byte little-endian header length N, N bytes of JSON header
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}), then the data section;
// offsets are relative to the start of the data section. Every field is checked before a tensor is handed out,
// so a truncated or hostile file yields an absl::Status, never an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/runtime/dtype.h"

namespace octet {

// One tensor inside a mapped file. `data` points into the mapping (valid while the owning file lives) and is
// aligned only as the file lays it out: read elements with memcpy, not by casting.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. NotFound: no such file; DataLoss: truncated; InvalidArgument: malformed header.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  // nullptr when the file has no tensor of that name.
  const TensorView* Find(std::string_view name) const;
  // Sorted by name.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The optional "__metadata__" string map (e.g. {"format": "pt"}).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  size_t file_size() const { return size_; }

 private:
  SafetensorsFile(std::string path, void* map, size_t size) : path_(std::move(path)), map_(map), size_(size) {}

  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Copies a floating-point tensor (F32, F16, BF16, F8_E4M3 raw values, no scale applied) into float32.
// InvalidArgument naming the tensor for integer dtypes.
absl::StatusOr<std::vector<float>> ReadAsFloat32(const TensorView& tensor);

}  // namespace octet
