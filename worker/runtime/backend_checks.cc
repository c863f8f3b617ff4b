#include "worker/runtime/backend_checks.h"

#include <string>

#include "base/log.h"

namespace octet {

Shape Fp8ScaleShape(const Shape& weight_shape) {
  auto blocks = [](int64_t n) { return (n + kFp8BlockSize - 1) / kFp8BlockSize; };
  return {blocks(weight_shape[0]), blocks(weight_shape[1])};
}

void CheckKvLayer(const KvLayer& cache, int64_t kv_heads, int64_t head_dim) {
  OCTET_CHECK(cache.k.defined() && cache.v.defined() && cache.k.ndim() == 4 && cache.v.shape() == cache.k.shape() &&
              cache.v.dtype() == cache.k.dtype() && cache.k.dim(2) == kv_heads && cache.k.dim(3) == head_dim)
      << "KV cache " << cache.k.DebugString() << " / " << cache.v.DebugString() << " for " << kv_heads
      << " kv heads of dim " << head_dim;
  if (cache.k.dtype() == DType::kF8E4M3) {
    const Shape scale_shape = {cache.k.dim(0), cache.k.dim(1), kv_heads};
    for (const Tensor* s : {&cache.k_scale, &cache.v_scale}) {
      OCTET_CHECK(s->defined() && s->dtype() == DType::kF32 && s->shape() == scale_shape)
          << "an fp8_e4m3 KV cache needs fp32 k_scale and v_scale " << ShapeToString(scale_shape) << ", got "
          << (s->defined() ? s->DebugString() : std::string("none"));
    }
  }
}

}  // namespace octet
