#include "router/http/openai_request.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "router/http/chat_template.h"
#include "router/http/json_codec.h"
#include "router/http/openai_errors.h"

namespace octet::router::http {
namespace {

using google::protobuf::Value;

// Sampling seed 0 asks the worker for a fresh seed; an OpenAI client that sends seed 0 wants a fixed one.
constexpr uint64_t kSeedForZero = 0x9E3779B97F4A7C15ull;

bool IsNull(const Value& value) {
  return value.kind_case() == Value::KIND_NOT_SET || value.kind_case() == Value::kNullValue;
}

absl::Status Unsupported(absl::string_view field, absl::string_view rule) {
  return InvalidField(field, absl::StrCat("`", field, "` is not supported: ", rule));
}

std::string FormatNumber(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) return absl::StrCat(static_cast<int64_t>(value));
  return absl::StrCat(value);
}

// A JSON number that is an int32 token id.
bool AsTokenId(const Value& value, int32_t* id) {
  if (value.kind_case() != Value::kNumberValue) return false;
  const double v = value.number_value();
  if (v != std::floor(v) || v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    return false;
  }
  *id = static_cast<int32_t>(v);
  return true;
}

bool AllTokenIds(const google::protobuf::ListValue& list, v1::PromptTokenIds* ids) {
  for (const Value& v : list.values()) {
    int32_t id = 0;
    if (!AsTokenId(v, &id)) return false;
    ids->add_ids(id);
  }
  return true;
}

// prompt: "text", ["text"], [1, 2, 3] or [[1, 2, 3]].
absl::Status MapPrompt(const Value& prompt, v1::GenerateRequest* out) {
  constexpr absl::string_view kShape = "a string, a list of one string, or a list of token ids";
  switch (prompt.kind_case()) {
    case Value::KIND_NOT_SET:
    case Value::kNullValue:
      return InvalidField("prompt", "`prompt` is required");
    case Value::kStringValue:
      out->set_prompt(prompt.string_value());
      return absl::OkStatus();
    case Value::kListValue:
      break;
    default:
      return InvalidField("prompt", absl::StrCat("`prompt` must be ", kShape));
  }
  const google::protobuf::ListValue& list = prompt.list_value();
  if (list.values().empty()) return InvalidField("prompt", "`prompt` must not be an empty list");
  const Value& first = list.values(0);
  if (first.kind_case() == Value::kStringValue || first.kind_case() == Value::kListValue) {
    if (list.values_size() > 1) {
      return InvalidField("prompt", absl::StrCat("`prompt` holds ", list.values_size(),
                                                 " prompts; batches are not supported: send one prompt per request"));
    }
    if (first.kind_case() == Value::kStringValue) {
      out->set_prompt(first.string_value());
      return absl::OkStatus();
    }
    if (!AllTokenIds(first.list_value(), out->mutable_prompt_token_ids())) {
      return InvalidField("prompt", "`prompt[0]` must be a list of integer token ids");
    }
    return absl::OkStatus();
  }
  if (!AllTokenIds(list, out->mutable_prompt_token_ids())) {
    return InvalidField("prompt", absl::StrCat("`prompt` must be ", kShape));
  }
  return absl::OkStatus();
}

// stop: "text" or ["a", "b"].
absl::Status MapStop(const Value& stop, v1::SamplingParams* sampling) {
  switch (stop.kind_case()) {
    case Value::KIND_NOT_SET:
    case Value::kNullValue:
      return absl::OkStatus();
    case Value::kStringValue:
      sampling->add_stop(stop.string_value());
      return absl::OkStatus();
    case Value::kListValue:
      for (const Value& s : stop.list_value().values()) {
        if (s.kind_case() != Value::kStringValue) {
          return InvalidField("stop", "`stop` must be a string or a list of strings");
        }
        sampling->add_stop(s.string_value());
      }
      return absl::OkStatus();
    default:
      return InvalidField("stop", "`stop` must be a string or a list of strings");
  }
}

absl::Status CheckLogitBias(const Value& logit_bias) {
  if (IsNull(logit_bias)) return absl::OkStatus();
  if (logit_bias.kind_case() == Value::kStructValue && logit_bias.struct_value().fields().empty()) {
    return absl::OkStatus();
  }
  return Unsupported("logit_bias", "it must be absent, null or {}");
}

// The fields both endpoints share (same names in both messages): unsupported ones, then the sampling mapping.
template <typename Request>
absl::Status MapCommon(const Request& r, GenerationCall* call) {
  if (r.has_n() && r.n() != 1) {
    return Unsupported("n", absl::StrCat("this server returns one choice per request (n must be 1), got ", r.n()));
  }
  if (r.has_presence_penalty() && r.presence_penalty() != 0.0f) {
    return Unsupported("presence_penalty", absl::StrCat("it must be 0, got ", FormatNumber(r.presence_penalty())));
  }
  if (r.has_frequency_penalty() && r.frequency_penalty() != 0.0f) {
    return Unsupported("frequency_penalty", absl::StrCat("it must be 0, got ", FormatNumber(r.frequency_penalty())));
  }
  if (r.has_repetition_penalty() && r.repetition_penalty() != 1.0f) {
    return Unsupported("repetition_penalty", absl::StrCat("it must be 1, got ", FormatNumber(r.repetition_penalty())));
  }
  if (r.has_min_tokens() && r.min_tokens() != 0) {
    return Unsupported("min_tokens", absl::StrCat("it must be 0, got ", r.min_tokens()));
  }
  if (absl::Status s = CheckLogitBias(r.logit_bias()); !s.ok()) return s;
  if (r.has_stream_options() && !r.stream()) {
    return InvalidField("stream_options", "`stream_options` is only allowed when `stream` is true");
  }
  call->model = r.model();
  call->stream = r.stream();
  call->include_usage = r.stream() && r.stream_options().include_usage();

  v1::SamplingParams* sampling = call->request.mutable_sampling();
  if (r.has_temperature()) sampling->set_temperature(r.temperature());
  if (r.has_top_p()) sampling->set_top_p(r.top_p());
  if (r.has_top_k()) sampling->set_top_k(r.top_k() == -1 ? 0 : r.top_k());  // vLLM spells "no limit" -1
  if (r.has_seed()) sampling->set_seed(r.seed() == 0 ? kSeedForZero : static_cast<uint64_t>(r.seed()));
  if (absl::Status s = MapStop(r.stop(), sampling); !s.ok()) return s;
  for (int32_t id : r.stop_token_ids()) sampling->add_stop_token_ids(id);
  sampling->set_ignore_eos(r.ignore_eos());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<openai::v1::CompletionRequest> ParseCompletionRequest(absl::string_view body) {
  openai::v1::CompletionRequest request;
  if (absl::Status s = ParseJson(body, &request); !s.ok()) return s;
  return request;
}

absl::StatusOr<openai::v1::ChatCompletionRequest> ParseChatCompletionRequest(absl::string_view body) {
  openai::v1::ChatCompletionRequest request;
  if (absl::Status s = ParseJson(body, &request); !s.ok()) return s;
  return request;
}

absl::StatusOr<GenerationCall> MapCompletionRequest(const openai::v1::CompletionRequest& r, std::string request_id) {
  GenerationCall call;
  call.request.set_request_id(std::move(request_id));
  if (r.echo()) return Unsupported("echo", "it must be false");
  if (r.has_best_of() && r.best_of() != 1)
    return Unsupported("best_of", absl::StrCat("it must be 1, got ", r.best_of()));
  if (!r.suffix().empty()) return Unsupported("suffix", "it must be empty");
  if (!IsNull(r.logprobs())) return Unsupported("logprobs", "it must be absent or null");
  if (absl::Status s = MapCommon(r, &call); !s.ok()) return s;
  if (absl::Status s = MapPrompt(r.prompt(), &call.request); !s.ok()) return s;
  call.request.mutable_sampling()->set_max_tokens(r.has_max_tokens() ? r.max_tokens() : kDefaultCompletionMaxTokens);
  return call;
}

absl::StatusOr<GenerationCall> MapChatRequest(const openai::v1::ChatCompletionRequest& r,
                                              std::optional<int32_t> turn_end_token_id, std::string request_id) {
  GenerationCall call;
  call.request.set_request_id(std::move(request_id));
  if (!IsNull(r.logprobs()) && !(r.logprobs().kind_case() == Value::kBoolValue && !r.logprobs().bool_value())) {
    return Unsupported("logprobs", "it must be false or absent");
  }
  if (r.has_top_logprobs() && r.top_logprobs() != 0) {
    return Unsupported("top_logprobs", absl::StrCat("it must be 0, got ", r.top_logprobs()));
  }
  if (!IsNull(r.tools()) && !(r.tools().kind_case() == Value::kListValue && r.tools().list_value().values().empty())) {
    return Unsupported("tools", "tool calling is not available; `tools` must be absent or empty");
  }
  if (!IsNull(r.tool_choice()) &&
      !(r.tool_choice().kind_case() == Value::kStringValue &&
        (r.tool_choice().string_value() == "none" || r.tool_choice().string_value() == "auto"))) {
    return Unsupported("tool_choice",
                       "tool calling is not available; `tool_choice` must be absent, \"none\" or \"auto\"");
  }
  if (!IsNull(r.response_format())) {
    const Value& format = r.response_format();
    const Value* type = nullptr;
    if (format.kind_case() == Value::kStructValue) {
      auto it = format.struct_value().fields().find("type");
      if (it != format.struct_value().fields().end()) type = &it->second;
    }
    if (type == nullptr || type->kind_case() != Value::kStringValue || type->string_value() != "text") {
      return Unsupported("response_format", "only {\"type\": \"text\"}");
    }
  }
  if (absl::Status s = MapCommon(r, &call); !s.ok()) return s;
  absl::StatusOr<std::string> prompt = RenderChatPrompt(r.messages());
  if (!prompt.ok()) return prompt.status();
  call.request.set_prompt(*std::move(prompt));

  v1::SamplingParams* sampling = call.request.mutable_sampling();
  if (r.has_max_completion_tokens()) {
    sampling->set_max_tokens(r.max_completion_tokens());
  } else if (r.has_max_tokens()) {
    sampling->set_max_tokens(r.max_tokens());
  }
  bool has_stop_string = false;
  for (const std::string& s : sampling->stop()) has_stop_string |= s == kChatTurnEnd;
  if (!has_stop_string) sampling->add_stop(std::string(kChatTurnEnd));
  if (turn_end_token_id) {
    bool has_stop_token = false;
    for (int32_t id : sampling->stop_token_ids()) has_stop_token |= id == *turn_end_token_id;
    if (!has_stop_token) sampling->add_stop_token_ids(*turn_end_token_id);
  }
  return call;
}

absl::Status CheckModel(absl::string_view requested, absl::string_view served) {
  if (requested.empty() || requested == served) return absl::OkStatus();
  return ModelNotFound(requested, served);
}

}  // namespace octet::router::http
