#include "worker/server/request_validator.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace octet {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

}  // namespace

absl::Status ValidatePrompt(std::span<const int32_t> ids, bool from_text, const RequestLimits& limits) {
  if (ids.empty()) {
    return Invalid(from_text ? "`prompt` must not be empty" : "`prompt_token_ids` must not be empty");
  }
  if (!from_text) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= limits.vocab_size) {
        return Invalid(absl::StrCat("`prompt_token_ids[", i, "]` = ", ids[i], " is not a token id: must be in [0, ",
                                    limits.vocab_size, ")"));
      }
    }
  }
  if (static_cast<int64_t>(ids.size()) >= limits.max_model_len) {
    return Invalid(absl::StrCat(from_text ? "`prompt`" : "`prompt_token_ids`", " has ", ids.size(),
                                " tokens; it must be shorter than the context of ", limits.max_model_len,
                                " tokens to leave room for at least one generated token"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SamplingParams> ValidateSampling(const v1::SamplingParams& s, int32_t prompt_len,
                                                const RequestLimits& limits) {
  SamplingParams p;
  const int32_t room = limits.max_model_len - prompt_len;
  if (s.has_max_tokens()) {
    if (s.max_tokens() <= 0) return Invalid(absl::StrCat("`max_tokens` must be >= 1, got ", s.max_tokens()));
    if (s.max_tokens() > room) {
      return Invalid(absl::StrCat("`max_tokens` = ", s.max_tokens(), " with a prompt of ", prompt_len,
                                  " tokens exceeds the context of ", limits.max_model_len,
                                  " tokens: must be <= ", room));
    }
    p.max_tokens = s.max_tokens();
  } else {
    p.max_tokens = room;
  }
  if (s.has_temperature()) {
    if (!std::isfinite(s.temperature()) || s.temperature() < 0.0f) {
      return Invalid(absl::StrCat("`temperature` must be a finite number >= 0, got ", s.temperature()));
    }
    p.temperature = s.temperature();
  }
  if (s.has_top_p()) {
    if (!(s.top_p() > 0.0f && s.top_p() <= 1.0f)) {  // also rejects NaN
      return Invalid(absl::StrCat("`top_p` must be in (0, 1], got ", s.top_p()));
    }
    p.top_p = s.top_p();
  }
  if (s.top_k() < 0) return Invalid(absl::StrCat("`top_k` must be >= 0 (0 = no limit), got ", s.top_k()));
  p.top_k = s.top_k();
  if (s.logprobs() < 0 || s.logprobs() > limits.max_logprobs) {
    return Invalid(absl::StrCat("`logprobs` must be in [0, ", limits.max_logprobs, "], got ", s.logprobs()));
  }
  p.logprobs = s.logprobs();
  if (static_cast<size_t>(s.stop_size()) > limits.max_stop_strings) {
    return Invalid(absl::StrCat("`stop` may hold at most ", limits.max_stop_strings, " strings, got ", s.stop_size()));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() || s.stop(i).size() > limits.max_stop_string_bytes) {
      return Invalid(absl::StrCat("`stop[", i, "]` must be 1 to ", limits.max_stop_string_bytes, " bytes long"));
    }
    p.stop.push_back(s.stop(i));
  }
  for (int i = 0; i < s.stop_token_ids_size(); ++i) {
    const int32_t id = s.stop_token_ids(i);
    if (id < 0 || id >= limits.vocab_size) {
      return Invalid(absl::StrCat("`stop_token_ids[", i, "]` = ", id, " is not a token id: must be in [0, ",
                                  limits.vocab_size, ")"));
    }
    p.stop_token_ids.push_back(id);
  }
  p.ignore_eos = s.ignore_eos();
  p.seed = s.seed() != 0 ? s.seed() : std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  return p;
}

}  // namespace octet
