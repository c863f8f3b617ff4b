#include "worker/model/model_factory.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "worker/model/qwen3_5_model.h"
#include "worker/model/qwen3_model.h"
#include "worker/model/synthetic_weights.h"

namespace octet {

absl::StatusOr<LoadedModel> LoadModel(const std::string& model_dir, Backend& backend, const LoadOptions& options) {
  LoadedModel loaded;
  if (absl::StartsWith(model_dir, kSyntheticPrefix)) {
    OCTET_ASSIGN_OR_RETURN(const std::string json,
                           SyntheticConfigJson(std::string_view(model_dir).substr(sizeof(kSyntheticPrefix) - 1)));
    OCTET_ASSIGN_OR_RETURN(loaded.config, ParseModelConfig(json));
    loaded.checkpoint =
        Checkpoint::Synthetic(model_dir, options.synthetic_seed, loaded.config.family == ModelFamily::kQwen35);
  } else {
    OCTET_ASSIGN_OR_RETURN(loaded.config, LoadModelConfig(model_dir));
    OCTET_ASSIGN_OR_RETURN(loaded.checkpoint, Checkpoint::Open(model_dir));
  }
  switch (loaded.config.family) {
    case ModelFamily::kQwen3: {
      OCTET_ASSIGN_OR_RETURN(loaded.model, Qwen3Model::Load(loaded.config, *loaded.checkpoint, backend, options.recipe,
                                                            &loaded.weight_stats));
      break;
    }
    case ModelFamily::kQwen35: {
      OCTET_ASSIGN_OR_RETURN(loaded.model, Qwen35Model::Load(loaded.config, *loaded.checkpoint, backend, options.recipe,
                                                             &loaded.weight_stats));
      break;
    }
  }
  return loaded;
}

}  // namespace octet
