// CPU reference: embedding lookup and row gathers.
#pragma once

#include <cstdint>

namespace octet::cpu {

// out[i, :] = table[rows[i], :]          table [num_rows, cols], rows [n], out [n, cols]
void GatherRows(const float* table, const int32_t* rows, float* out, int64_t n, int64_t cols);

}  // namespace octet::cpu
