#include "worker/model/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace octet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr uintmax_t kMaxIndexBytes = 100ull << 20;

// Shard names must stay inside the model folder: relative, no "..".
bool IsSafeRelativePath(const std::string& name) {
  if (name.empty()) return false;
  const fs::path p(name);
  if (p.is_absolute()) return false;
  for (const fs::path& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& model_dir) {
  std::error_code ec;
  const fs::file_status st = fs::status(model_dir, ec);
  if (!fs::exists(st)) return absl::NotFoundError(absl::StrCat("model folder ", model_dir, " does not exist"));
  if (!fs::is_directory(st)) return absl::InvalidArgumentError(absl::StrCat(model_dir, " is not a folder"));

  std::unique_ptr<Checkpoint> ckpt(new Checkpoint(model_dir));
  const fs::path dir(model_dir);
  if (fs::exists(dir / kIndexFile, ec)) {
    OCTET_RETURN_IF_ERROR(ckpt->OpenIndex((dir / kIndexFile).string()));
  } else if (fs::exists(dir / kSingleFile, ec)) {
    OCTET_RETURN_IF_ERROR(ckpt->OpenFiles({kSingleFile}));
  } else {
    std::vector<std::string> names;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec) && e.path().extension() == ".safetensors")
        names.push_back(e.path().filename().string());
    }
    if (names.empty()) {
      return absl::NotFoundError(
          absl::StrCat("model folder ", model_dir, " has no ", kSingleFile, ", ", kIndexFile, " or *.safetensors"));
    }
    std::sort(names.begin(), names.end());
    OCTET_RETURN_IF_ERROR(ckpt->OpenFiles(names));
  }
  OCTET_LOG(INFO, "model") << "opened checkpoint " << model_dir << ": " << ckpt->by_name_.size() << " tensors in "
                           << ckpt->files_.size() << " file(s)";
  return ckpt;
}

std::unique_ptr<Checkpoint> Checkpoint::Synthetic(std::string name, uint64_t seed, bool offset_norms) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint(std::move(name)));
  ckpt->synthetic_ = true;
  ckpt->synthetic_seed_ = seed;
  ckpt->synthetic_offset_norms_ = offset_norms;
  return ckpt;
}

absl::Status Checkpoint::OpenIndex(const std::string& index_path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(index_path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(index_path, ": cannot stat: ", ec.message()));
  if (size > kMaxIndexBytes) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": ", size, " bytes, larger than any real index"));
  }
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(index_path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const json index = json::parse(buffer.str(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": not a JSON object"));
  }
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object() || map_it->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": 'weight_map' must be a non-empty object"));
  }

  // Open each shard once, in name order; then check each mapped tensor is really in its shard.
  std::map<std::string, SafetensorsFile*> shards;
  for (const auto& [tensor, file] : map_it->items()) {
    if (!file.is_string() || !IsSafeRelativePath(file.get<std::string>())) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": weight_map['", tensor, "'] must be a file name inside the model folder"));
    }
    shards.emplace(file.get<std::string>(), nullptr);
  }
  for (auto& [file_name, shard] : shards) {
    const std::string path = (fs::path(model_dir_) / file_name).string();
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError(
          absl::StrCat(index_path, " lists shard ", file_name, " but ", path, " does not exist"));
    }
    OCTET_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> opened, SafetensorsFile::Open(path));
    shard = opened.get();
    files_.push_back(std::move(opened));
  }
  for (const auto& [tensor, file] : map_it->items()) {
    const SafetensorsFile* shard = shards.at(file.get<std::string>());
    const TensorView* view = shard->Find(tensor);
    if (view == nullptr) {
      return absl::NotFoundError(
          absl::StrCat(index_path, " maps tensor '", tensor, "' to ", shard->path(), ", which has no such tensor"));
    }
    by_name_.emplace(tensor, view);
  }
  return absl::OkStatus();
}

absl::Status Checkpoint::OpenFiles(const std::vector<std::string>& file_names) {
  std::map<std::string, std::string, std::less<>> owner;  // tensor → file, for the duplicate message
  for (const std::string& name : file_names) {
    const std::string path = (fs::path(model_dir_) / name).string();
    OCTET_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> opened, SafetensorsFile::Open(path));
    for (const TensorView& t : opened->tensors()) {
      auto [it, inserted] = by_name_.emplace(t.name, &t);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' is in both ", owner[t.name], " and ",
                                                       path, " (and there is no ", kIndexFile, ")"));
      }
      owner[t.name] = path;
    }
    files_.push_back(std::move(opened));
  }
  return absl::OkStatus();
}

const TensorView* Checkpoint::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

absl::StatusOr<const TensorView*> Checkpoint::Get(std::string_view name) const {
  const TensorView* t = Find(name);
  if (t == nullptr) {
    return absl::NotFoundError(absl::StrCat("checkpoint ", model_dir_, " has no tensor '", std::string(name), "'"));
  }
  return t;
}

std::vector<std::string> Checkpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, view] : by_name_) names.push_back(name);
  return names;
}

}  // namespace octet
