#include "kernels/cpu/embedding.h"

#include <cstring>

namespace octet::cpu {

void GatherRows(const float* table, const int32_t* rows, float* out, int64_t n, int64_t cols) {
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * cols, table + static_cast<int64_t>(rows[i]) * cols, cols * sizeof(float));
  }
}

}  // namespace octet::cpu
