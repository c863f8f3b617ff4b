// ModelCatalog: what the HTTP front end asks the router's Generation service besides Generate: the served model
// (GetModelInfo, kept for a few seconds so that requests do not each ask) and the token id of the chat turn end
// (Tokenize, kept while the served model's name stays the same).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "octet/v1/generation.grpc.pb.h"

namespace octet::router::http {

class ModelCatalog {
 public:
  // `stub` must outlive the catalog.
  explicit ModelCatalog(v1::Generation::StubInterface* stub, absl::Duration max_age = absl::Seconds(5),
                        absl::Duration call_timeout = absl::Seconds(10));

  // The served model; a failed GetModelInfo is returned as is (UNAVAILABLE when no worker is healthy) and not kept.
  absl::StatusOr<v1::ModelInfo> Info();

  // The id of "<|im_end|>" when the served tokenizer encodes it as exactly one token; nullopt when it does not, or
  // when Tokenize failed (then it is asked again next time).
  std::optional<int32_t> TurnEndTokenId(const std::string& model_name);

 private:
  v1::Generation::StubInterface* const stub_;
  const absl::Duration max_age_;
  const absl::Duration call_timeout_;

  absl::Mutex mu_;
  std::optional<v1::ModelInfo> info_ ABSL_GUARDED_BY(mu_);
  absl::Time info_time_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> turn_end_model_ ABSL_GUARDED_BY(mu_);  // the model turn_end_id_ was asked for
  std::optional<int32_t> turn_end_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace octet::router::http
