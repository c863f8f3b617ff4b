// Shape rules every backend enforces the same way on its inputs (device placement is each backend's own check).
#pragma once

#include <cstdint>

#include "worker/runtime/backend.h"

namespace octet {

// The block scales an FP8 weight [out, in] must carry: fp32 [ceil(out / 128), ceil(in / 128)].
Shape Fp8ScaleShape(const Shape& weight_shape);

// A KV cache's k and v: [num_blocks, block_size, kv_heads, head_dim], the same dtype; for FP8 also the fp32
// per-(token, kv head) scales [num_blocks, block_size, kv_heads]. Aborts naming what is wrong.
void CheckKvLayer(const KvLayer& cache, int64_t kv_heads, int64_t head_dim);

}  // namespace octet
