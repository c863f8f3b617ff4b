// Engine-side sampling parameters of one request (validated at the service edge before they get here).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace octet {

struct SamplingParams {
  int32_t max_tokens = 16;   // >= 1, already clipped to the context by validation
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;        // in (0, 1]
  int32_t top_k = 0;         // 0 = all tokens
  uint64_t seed = 0;         // the request's RNG seed (the server derives one when the client gives 0)
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t logprobs = 0;  // top-N alternatives to report per generated token

  bool greedy() const { return temperature == 0.0f; }
};

}  // namespace octet
