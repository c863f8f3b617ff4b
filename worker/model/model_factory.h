// LoadModel: reads a Hugging Face model folder (config.json + safetensors) and builds the model on a backend.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/model/checkpoint.h"
#include "worker/model/model.h"
#include "worker/model/model_config.h"

namespace octet {

struct LoadedModel {
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;  // memory-mapped weights, kept for backends that read them lazily
  std::unique_ptr<Model> model;
};

absl::StatusOr<LoadedModel> LoadModel(const std::string& model_dir, Backend& backend);

}  // namespace octet
