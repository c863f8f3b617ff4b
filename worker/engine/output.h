// What the engine hands back for a request, and the sink it hands it to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "worker/engine/sampler.h"

namespace octet {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };

// One increment of a request's output: everything produced since the previous one.
struct GenerationOutput {
  std::string text;                    // new text; never ends inside a UTF-8 character
  std::vector<int32_t> token_ids;      // new tokens
  std::vector<SampleResult> logprobs;  // one per new token when the request asked for logprobs
  FinishReason finish_reason = FinishReason::kNone;
  absl::Status status;  // set with kError
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
};

// Receives a request's outputs on the engine thread. Implementations must not block: queue and return.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void Deliver(GenerationOutput output) = 0;
};

}  // namespace octet
