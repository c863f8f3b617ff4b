#include "worker/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace octet {
namespace {

using nlohmann::json;

// Real headers are a few hundred KB even for 1,000-tensor shards; anything larger is corrupt or hostile.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::optional<DType> ParseDType(std::string_view s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  if (s == "F8_E4M3") return DType::kF8E4M3;
  if (s == "I32") return DType::kI32;
  if (s == "I64") return DType::kI64;
  if (s == "U8") return DType::kU8;
  return std::nullopt;
}

// JSON integers >= 0 parse as number_unsigned; negative ones and floats are rejected.
bool GetUint64(const json& j, uint64_t* out) {
  if (!j.is_number_unsigned()) return false;
  *out = j.get<uint64_t>();
  return true;
}

// Decodes OCP E4M3 (float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN.
float F8E4M3ToFloat(uint8_t v) {
  const float sign = (v & 0x80u) ? -1.0f : 1.0f;
  const int exp = (v >> 3) & 0xf;
  const int mant = v & 0x7;
  if (exp == 0xf && mant == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);  // subnormal: mant/8 * 2^-6
  return sign * std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
}

struct Entry {
  size_t index;  // into the tensor list
  uint64_t begin;
  uint64_t end;
};

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const std::string where = absl::StrCat("safetensors file ", path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(where, ": cannot open: ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(where, ": cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return absl::DataLossError(
        absl::StrCat(where, ": ", size, " bytes, shorter than the 8-byte header length (truncated?)"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) {
    return absl::Status(absl::ErrnoToStatusCode(map_err),
                        absl::StrCat(where, ": mmap of ", size, " bytes failed: ", std::strerror(map_err)));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path, map, size));

  const auto* bytes = static_cast<const std::byte*>(map);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<uint64_t>(bytes[i]);
  if (header_len > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": header length ", header_len, " exceeds the limit of ",
                                                   kMaxHeaderBytes, " bytes (not a safetensors file?)"));
  }
  if (header_len > size - 8) {
    return absl::DataLossError(
        absl::StrCat(where, ": header length ", header_len, " but only ", size - 8, " bytes follow it (truncated?)"));
  }
  const auto* header_begin = reinterpret_cast<const char*>(bytes + 8);
  json header = json::parse(header_begin, header_begin + header_len, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": header is not valid JSON"));
  }
  if (!header.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": header is JSON but not an object"));
  }

  const std::byte* data_section = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": __metadata__ must be an object of strings"));
      }
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) {
          return absl::InvalidArgumentError(absl::StrCat(where, ": __metadata__ key '", key, "' must be a string"));
        }
        file->metadata_[key] = v.get<std::string>();
      }
      continue;
    }
    const std::string at = absl::StrCat(where, ": tensor '", name, "'");
    if (!value.is_object()) return absl::InvalidArgumentError(absl::StrCat(at, ": entry is not an object"));

    TensorView t;
    t.name = name;
    const auto dtype_it = value.find("dtype");
    if (dtype_it == value.end() || !dtype_it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": missing or non-string 'dtype'"));
    }
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    const std::optional<DType> dtype = ParseDType(dtype_name);
    if (!dtype) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": unsupported dtype '", dtype_name,
                                                     "' (supported: F32, F16, BF16, F8_E4M3, I32, I64, U8)"));
    }
    t.dtype = *dtype;

    const auto shape_it = value.find("shape");
    if (shape_it == value.end() || !shape_it->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": missing or non-array 'shape'"));
    }
    // numel as uint64 with overflow checks; each dim also fits int64 since TensorView::shape is signed.
    uint64_t numel = 1;
    bool overflow = false;
    for (const json& dim : *shape_it) {
      uint64_t d = 0;
      if (!GetUint64(dim, &d) || d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(at, ": shape ", shape_it->dump(), " must hold non-negative integers"));
      }
      t.shape.push_back(static_cast<int64_t>(d));
      overflow |= __builtin_mul_overflow(numel, d, &numel);
    }
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeSize(t.dtype)), &nbytes);
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": shape ", shape_it->dump(), " is too large"));
    }

    const auto off_it = value.find("data_offsets");
    uint64_t begin = 0;
    uint64_t end = 0;
    if (off_it == value.end() || !off_it->is_array() || off_it->size() != 2 || !GetUint64((*off_it)[0], &begin) ||
        !GetUint64((*off_it)[1], &end)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": 'data_offsets' must be [begin, end] of non-negative integers"));
    }
    if (begin > end) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": data_offsets [", begin, ", ", end, "] has begin > end"));
    }
    if (end > data_size) {
      return absl::DataLossError(absl::StrCat(at, ": data_offsets [", begin, ", ", end,
                                              "] run past the data section of ", data_size, " bytes (truncated?)"));
    }
    if (end - begin != nbytes) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": data_offsets [", begin, ", ", end, "] hold ", end - begin,
                                                     " bytes but ", dtype_name, " shape ", shape_it->dump(), " needs ",
                                                     nbytes));
    }
    t.data = data_section + begin;
    t.nbytes = static_cast<size_t>(nbytes);
    entries.push_back({file->tensors_.size(), begin, end});
    file->tensors_.push_back(std::move(t));
  }

  // Non-empty byte ranges must not overlap (holes are tolerated).
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin == e.end) continue;
    if (prev != nullptr && e.begin < prev->end) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensors '", file->tensors_[prev->index].name, "' and '",
                                                     file->tensors_[e.index].name, "' have overlapping data_offsets"));
    }
    if (prev == nullptr || e.end > prev->end) prev = &e;
  }

  std::sort(file->tensors_.begin(), file->tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) return nullptr;
  return &*it;
}

absl::StatusOr<std::vector<float>> ReadAsFloat32(const TensorView& tensor) {
  const size_t n = static_cast<size_t>(tensor.numel());
  if (n * DTypeSize(tensor.dtype) != tensor.nbytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", tensor.name, "': ", tensor.nbytes, " bytes do not match its shape"));
  }
  std::vector<float> out(n);
  const std::byte* p = tensor.data;
  switch (tensor.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), p, n * sizeof(float));
      return out;
    case DType::kBF16:
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, p + 2 * i, sizeof(v));
        out[i] = tensor.dtype == DType::kBF16 ? BF16ToFloat(v) : F16ToFloat(v);
      }
      return out;
    case DType::kF8E4M3:
      for (size_t i = 0; i < n; ++i) out[i] = F8E4M3ToFloat(std::to_integer<uint8_t>(p[i]));
      return out;
    case DType::kI32:
    case DType::kI64:
    case DType::kU8:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("tensor '", tensor.name, "' has dtype ",
                                                 std::string(DTypeName(tensor.dtype)),
                                                 "; only floating-point tensors convert to float32"));
}

}  // namespace octet
