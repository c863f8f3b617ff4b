// CPU reference: rotary position embedding, rotate-half convention (as Hugging Face Qwen/Llama).
#pragma once

#include <cstdint>

namespace octet::cpu {

// In place on the first rotary_dim dims of each head of x [tokens, heads, head_dim]:
//   x1 = x[:half], x2 = x[half:rotary_dim]; x1' = x1 cos - x2 sin; x2' = x2 cos + x1 sin
// with angle(p, i) = p * theta^(-2i / rotary_dim). Computed in fp32 like transformers does.
void Rope(float* x, const int32_t* positions, int64_t tokens, int64_t heads, int64_t head_dim, int64_t rotary_dim,
          float theta);

}  // namespace octet::cpu
