// ServedModel: what the worker's services need of the loaded model — tokenizer, engine, limits, description.
// Filled once the model is loaded; `ready` flips to true after warm-up, and only then are requests accepted.
#pragma once

#include <atomic>
#include <memory>

#include "octet/v1/generation.pb.h"
#include "worker/engine/engine.h"
#include "worker/server/request_validator.h"
#include "worker/tokenizer/tokenizer.h"

namespace octet {

struct ServedModel {
  std::atomic<bool> ready{false};
  // Set by SIGTERM or the Drain RPC: new Generate calls get UNAVAILABLE while accepted ones finish.
  std::atomic<bool> draining{false};
  // Valid once ready.
  const Tokenizer* tokenizer = nullptr;
  Engine* engine = nullptr;
  RequestLimits limits;
  v1::ModelInfo info;
  // Where refused requests are counted (metrics); null when the worker has no metrics.
  EngineObserver* observer = nullptr;
};

}  // namespace octet
