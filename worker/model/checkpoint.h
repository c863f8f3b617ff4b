// The weights of one Hugging Face model folder: model.safetensors, or the shards named by
// model.safetensors.index.json, opened and validated together behind one name → tensor lookup.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/model/safetensors.h"

namespace octet {

class Checkpoint {
 public:
  // Opens `model_dir`/model.safetensors.index.json if present (every listed shard must exist and hold the
  // tensors mapped to it), else `model_dir`/model.safetensors, else every *.safetensors in the folder (tensor
  // names must then be unique across files). NotFound when the folder holds no safetensors at all.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);
  // A checkpoint without files for a synthetic model (synthetic_weights.h): Find finds nothing, and WeightLoader
  // makes up every tensor the model asks for, of the shape it asks for.
  static std::unique_ptr<Checkpoint> Synthetic(std::string name, uint64_t seed, bool offset_norms);
  bool synthetic() const { return synthetic_; }
  uint64_t synthetic_seed() const { return synthetic_seed_; }
  bool synthetic_offset_norms() const { return synthetic_offset_norms_; }

  // nullptr when the checkpoint has no tensor of that name.
  const TensorView* Find(std::string_view name) const;
  // Like Find, but NotFound naming the tensor and the folder; for loaders whose tensors are mandatory.
  absl::StatusOr<const TensorView*> Get(std::string_view name) const;
  // All tensor names, sorted.
  std::vector<std::string> Names() const;
  size_t num_tensors() const { return by_name_.size(); }
  // The opened files, in the order they were opened.
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::string& model_dir() const { return model_dir_; }

 private:
  explicit Checkpoint(std::string model_dir) : model_dir_(std::move(model_dir)) {}

  absl::Status OpenIndex(const std::string& index_path);
  absl::Status OpenFiles(const std::vector<std::string>& file_names);

  std::string model_dir_;
  bool synthetic_ = false;
  uint64_t synthetic_seed_ = 0;
  bool synthetic_offset_norms_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*, std::less<>> by_name_;
};

}  // namespace octet
