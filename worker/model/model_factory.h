// LoadModel: reads a Hugging Face model folder (config.json + safetensors), or makes a synthetic model
// ("synthetic:<preset>"), and builds the model on a backend.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/model/checkpoint.h"
#include "worker/model/model.h"
#include "worker/model/model_config.h"
#include "worker/model/weight_loader.h"

namespace octet {

struct LoadOptions {
  // Which linear layers run in FP8. The library default computes exactly what the checkpoint holds (16-bit);
  // the worker's --fp8-recipe defaults to official.
  Fp8Recipe recipe = Fp8Recipe::kNone;
  // Seed of a synthetic model's random weights (model_dir "synthetic:<preset>", synthetic_weights.h).
  uint64_t synthetic_seed = 0;
};

struct LoadedModel {
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;  // memory-mapped weights, kept for backends that read them lazily
  std::unique_ptr<Model> model;
  WeightStats weight_stats;
};

absl::StatusOr<LoadedModel> LoadModel(const std::string& model_dir, Backend& backend, const LoadOptions& options = {});

}  // namespace octet
