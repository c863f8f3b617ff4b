// tokenizer.json parsing (see tokenizer_config.h). nlohmann::json exceptions stay inside this file: parse errors
// and any type mismatch the checks below miss come back as InvalidArgument.
#include "worker/tokenizer/tokenizer_config.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace octet {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", field, ": ", what));
}

// The member `key` of object `obj`, or nullptr when it is absent or null.
const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<bool> GetBool(const Json& obj, const char* key, const std::string& path, bool fallback) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) {
    return Invalid(absl::StrCat(path, ".", key), absl::StrCat("expected a boolean, got ", v->type_name()));
  }
  return v->get<bool>();
}

absl::StatusOr<std::string> GetString(const Json& obj, const char* key, const std::string& path) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return Invalid(absl::StrCat(path, ".", key), "missing");
  if (!v->is_string()) {
    return Invalid(absl::StrCat(path, ".", key), absl::StrCat("expected a string, got ", v->type_name()));
  }
  return v->get<std::string>();
}

absl::StatusOr<int32_t> ToId(const Json& v, const std::string& path) {
  if (!v.is_number_integer()) return Invalid(path, absl::StrCat("expected an integer id, got ", v.type_name()));
  const int64_t id = v.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), 1ULL << 40))
                                            : v.get<int64_t>();
  if (id < 0 || id >= std::numeric_limits<int32_t>::max()) {
    return Invalid(path, absl::StrCat("id ", id, " is out of range"));
  }
  return static_cast<int32_t>(id);
}

// The "type" of a component object.
absl::StatusOr<std::string> TypeOf(const Json& component, const std::string& path) {
  if (!component.is_object()) return Invalid(path, absl::StrCat("expected an object, got ", component.type_name()));
  return GetString(component, "type", path);
}

// Status plumbing for the parsers below (file-local; #undef-ed at the end).
#define TOKENIZER_CONCAT_INNER(a, b) a##b
#define TOKENIZER_CONCAT(a, b) TOKENIZER_CONCAT_INNER(a, b)
#define TOKENIZER_ASSIGN_OR_RETURN(lhs, expr)                                                               \
  auto TOKENIZER_CONCAT(status_or_, __LINE__) = (expr);                                                     \
  if (!TOKENIZER_CONCAT(status_or_, __LINE__).ok()) return TOKENIZER_CONCAT(status_or_, __LINE__).status(); \
  lhs = *std::move(TOKENIZER_CONCAT(status_or_, __LINE__))
#define TOKENIZER_RETURN_IF_ERROR(expr)  \
  do {                                   \
    const absl::Status status_ = (expr); \
    if (!status_.ok()) return status_;   \
  } while (false)

absl::Status ParseAddedTokens(const Json& root, TokenizerConfig* config) {
  const Json* list = Member(root, "added_tokens");
  if (list == nullptr) return absl::OkStatus();
  if (!list->is_array()) return Invalid("added_tokens", absl::StrCat("expected an array, got ", list->type_name()));
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& t = (*list)[i];
    const std::string path = absl::StrCat("added_tokens[", i, "]");
    if (!t.is_object()) return Invalid(path, absl::StrCat("expected an object, got ", t.type_name()));
    AddedToken token;
    const Json* id = Member(t, "id");
    if (id == nullptr) return Invalid(path + ".id", "missing");
    TOKENIZER_ASSIGN_OR_RETURN(token.id, ToId(*id, path + ".id"));
    TOKENIZER_ASSIGN_OR_RETURN(token.content, GetString(t, "content", path));
    if (token.content.empty()) return Invalid(path + ".content", "must not be empty");
    TOKENIZER_ASSIGN_OR_RETURN(token.special, GetBool(t, "special", path, false));
    TOKENIZER_ASSIGN_OR_RETURN(token.lstrip, GetBool(t, "lstrip", path, false));
    TOKENIZER_ASSIGN_OR_RETURN(token.rstrip, GetBool(t, "rstrip", path, false));
    TOKENIZER_ASSIGN_OR_RETURN(token.normalized, GetBool(t, "normalized", path, !token.special));
    TOKENIZER_ASSIGN_OR_RETURN(const bool single_word, GetBool(t, "single_word", path, false));
    if (single_word) return Invalid(path + ".single_word", "true is not supported");
    config->added_tokens.push_back(std::move(token));
  }
  return absl::OkStatus();
}

absl::Status ParseNormalizer(const Json& root, TokenizerConfig* config) {
  const Json* n = Member(root, "normalizer");
  if (n == nullptr) return absl::OkStatus();
  TOKENIZER_ASSIGN_OR_RETURN(const std::string type, TypeOf(*n, "normalizer"));
  if (type == "NFC") {
    config->normalization = Normalization::kNfc;
    return absl::OkStatus();
  }
  if (type == "Sequence") {  // of at most one NFC
    const Json* list = Member(*n, "normalizers");
    if (list == nullptr || !list->is_array()) return Invalid("normalizer.normalizers", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string path = absl::StrCat("normalizer.normalizers[", i, "]");
      TOKENIZER_ASSIGN_OR_RETURN(const std::string t, TypeOf((*list)[i], path));
      if (t != "NFC") return Invalid(path + ".type", absl::StrCat("\"", t, "\" is not supported (only NFC)"));
      config->normalization = Normalization::kNfc;
    }
    return absl::OkStatus();
  }
  return Invalid("normalizer.type", absl::StrCat("\"", type, "\" is not supported (null or NFC only)"));
}

// One pre-tokenizer step; `*byte_level_seen` is set by the ByteLevel step, which must come last.
absl::Status ParsePreTokenizerStep(const Json& step, const std::string& path, bool* byte_level_seen,
                                   TokenizerConfig* config) {
  if (*byte_level_seen) return Invalid(path, "nothing may follow the ByteLevel pre-tokenizer");
  TOKENIZER_ASSIGN_OR_RETURN(const std::string type, TypeOf(step, path));
  if (type == "ByteLevel") {
    TOKENIZER_ASSIGN_OR_RETURN(const bool add_prefix_space, GetBool(step, "add_prefix_space", path, false));
    if (add_prefix_space) return Invalid(path + ".add_prefix_space", "true is not supported");
    TOKENIZER_ASSIGN_OR_RETURN(const bool use_regex, GetBool(step, "use_regex", path, true));
    if (use_regex) config->splits.push_back(SplitPattern::kGpt2);
    *byte_level_seen = true;
    return absl::OkStatus();
  }
  if (type == "Split") {
    const Json* pattern = Member(step, "pattern");
    if (pattern == nullptr || !pattern->is_object()) return Invalid(path + ".pattern", "expected {\"Regex\": ...}");
    const Json* regex = Member(*pattern, "Regex");
    if (regex == nullptr || !regex->is_string()) {
      return Invalid(path + ".pattern", "only {\"Regex\": ...} patterns are supported");
    }
    TOKENIZER_ASSIGN_OR_RETURN(const std::string behavior, GetString(step, "behavior", path));
    if (behavior != "Isolated") {
      return Invalid(path + ".behavior", absl::StrCat("\"", behavior, "\" is not supported (only Isolated)"));
    }
    TOKENIZER_ASSIGN_OR_RETURN(const bool invert, GetBool(step, "invert", path, false));
    if (invert) return Invalid(path + ".invert", "true is not supported");
    TOKENIZER_ASSIGN_OR_RETURN(const SplitPattern split, SplitPatternFromRegex(regex->get<std::string>()));
    config->splits.push_back(split);
    return absl::OkStatus();
  }
  return Invalid(path + ".type", absl::StrCat("\"", type, "\" is not supported (ByteLevel, Split or Sequence)"));
}

absl::Status ParsePreTokenizer(const Json& root, TokenizerConfig* config) {
  const Json* p = Member(root, "pre_tokenizer");
  if (p == nullptr) return Invalid("pre_tokenizer", "missing: a byte-level tokenizer needs ByteLevel");
  TOKENIZER_ASSIGN_OR_RETURN(const std::string type, TypeOf(*p, "pre_tokenizer"));
  bool byte_level_seen = false;
  if (type == "Sequence") {
    const Json* list = Member(*p, "pretokenizers");
    if (list == nullptr || !list->is_array()) return Invalid("pre_tokenizer.pretokenizers", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      TOKENIZER_RETURN_IF_ERROR(ParsePreTokenizerStep((*list)[i], absl::StrCat("pre_tokenizer.pretokenizers[", i, "]"),
                                                      &byte_level_seen, config));
    }
  } else {
    TOKENIZER_RETURN_IF_ERROR(ParsePreTokenizerStep(*p, "pre_tokenizer", &byte_level_seen, config));
  }
  if (!byte_level_seen) return Invalid("pre_tokenizer", "must end with a ByteLevel pre-tokenizer");
  return absl::OkStatus();
}

absl::Status ParseTemplate(const Json& processor, const std::string& path, TokenizerConfig* config) {
  const Json* single = Member(processor, "single");
  if (single == nullptr || !single->is_array()) return Invalid(path + ".single", "expected an array");
  const Json* specials = Member(processor, "special_tokens");
  bool sequence_seen = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& piece = (*single)[i];
    const std::string piece_path = absl::StrCat(path, ".single[", i, "]");
    if (!piece.is_object() || piece.size() != 1) {
      return Invalid(piece_path, "expected {\"SpecialToken\"|\"Sequence\": ...}");
    }
    if (piece.contains("Sequence")) {
      if (sequence_seen) return Invalid(piece_path, "the single template may hold one Sequence only");
      sequence_seen = true;
      continue;
    }
    const Json* special = Member(piece, "SpecialToken");
    if (special == nullptr || !special->is_object()) return Invalid(piece_path, "expected SpecialToken or Sequence");
    TOKENIZER_ASSIGN_OR_RETURN(const std::string name, GetString(*special, "id", piece_path + ".SpecialToken"));
    const Json* entry = specials != nullptr && specials->is_object() ? Member(*specials, name.c_str()) : nullptr;
    const Json* ids = entry != nullptr && entry->is_object() ? Member(*entry, "ids") : nullptr;
    if (ids == nullptr || !ids->is_array()) {
      return Invalid(path + ".special_tokens", absl::StrCat("no ids for \"", name, "\""));
    }
    for (size_t k = 0; k < ids->size(); ++k) {
      TOKENIZER_ASSIGN_OR_RETURN(const int32_t id,
                                 ToId((*ids)[k], absl::StrCat(path, ".special_tokens.", name, ".ids")));
      (sequence_seen ? config->template_suffix : config->template_prefix).push_back(id);
    }
  }
  if (!sequence_seen) return Invalid(path + ".single", "has no Sequence");
  return absl::OkStatus();
}

// Only TemplateProcessing changes ids; ByteLevel post-processing only trims offsets, which octet does not report.
absl::Status ParsePostProcessorStep(const Json& step, const std::string& path, TokenizerConfig* config) {
  TOKENIZER_ASSIGN_OR_RETURN(const std::string type, TypeOf(step, path));
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "TemplateProcessing") return ParseTemplate(step, path, config);
  return Invalid(path + ".type",
                 absl::StrCat("\"", type, "\" is not supported (ByteLevel, TemplateProcessing or Sequence)"));
}

absl::Status ParsePostProcessor(const Json& root, TokenizerConfig* config) {
  const Json* p = Member(root, "post_processor");
  if (p == nullptr) return absl::OkStatus();
  TOKENIZER_ASSIGN_OR_RETURN(const std::string type, TypeOf(*p, "post_processor"));
  if (type != "Sequence") return ParsePostProcessorStep(*p, "post_processor", config);
  const Json* list = Member(*p, "processors");
  if (list == nullptr || !list->is_array()) return Invalid("post_processor.processors", "expected an array");
  for (size_t i = 0; i < list->size(); ++i) {
    TOKENIZER_RETURN_IF_ERROR(
        ParsePostProcessorStep((*list)[i], absl::StrCat("post_processor.processors[", i, "]"), config));
  }
  return absl::OkStatus();
}

absl::Status ParseDecoder(const Json& root) {
  const Json* d = Member(root, "decoder");
  if (d == nullptr) return Invalid("decoder", "missing: a byte-level tokenizer needs the ByteLevel decoder");
  TOKENIZER_ASSIGN_OR_RETURN(const std::string type, TypeOf(*d, "decoder"));
  if (type != "ByteLevel") {
    return Invalid("decoder.type", absl::StrCat("\"", type, "\" is not supported (ByteLevel only)"));
  }
  return absl::OkStatus();
}

absl::Status ParseMerges(const Json& list, TokenizerConfig* config) {
  config->merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& m = list[i];
    if (m.is_string()) {  // "left right", split at the first space
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) {
        return Invalid(absl::StrCat("model.merges[", i, "]"), absl::StrCat("\"", s, "\" is not \"left right\""));
      }
      config->merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      config->merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return Invalid(absl::StrCat("model.merges[", i, "]"), "expected \"left right\" or [\"left\", \"right\"]");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseModel(const Json& root, TokenizerConfig* config) {
  const Json* model = Member(root, "model");
  if (model == nullptr || !model->is_object()) return Invalid("model", "missing or not an object");
  if (const Json* type = Member(*model, "type"); type != nullptr && *type != "BPE") {
    return Invalid("model.type", absl::StrCat(type->dump(), " is not supported (BPE only)"));
  }
  if (const Json* dropout = Member(*model, "dropout"); dropout != nullptr && (!dropout->is_number() || *dropout != 0)) {
    return Invalid("model.dropout", "must be null (BPE dropout is random)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = Member(*model, key);
    if (v != nullptr && *v != "") return Invalid(absl::StrCat("model.", key), "must be null or empty");
  }
  TOKENIZER_ASSIGN_OR_RETURN(const bool byte_fallback, GetBool(*model, "byte_fallback", "model", false));
  if (byte_fallback) return Invalid("model.byte_fallback", "true is not supported (byte-level BPE needs no fallback)");
  TOKENIZER_ASSIGN_OR_RETURN(config->bpe.fuse_unk, GetBool(*model, "fuse_unk", "model", false));
  TOKENIZER_ASSIGN_OR_RETURN(config->bpe.ignore_merges, GetBool(*model, "ignore_merges", "model", false));

  const Json* vocab = Member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) return Invalid("model.vocab", "missing or not an object");
  config->vocab.reserve(vocab->size());
  for (const auto& [text, id_json] : vocab->items()) {
    TOKENIZER_ASSIGN_OR_RETURN(const int32_t id, ToId(id_json, absl::StrCat("model.vocab[\"", text, "\"]")));
    config->vocab.emplace_back(text, id);
  }
  if (const Json* unk = Member(*model, "unk_token"); unk != nullptr) {
    if (!unk->is_string()) return Invalid("model.unk_token", "expected a string");
    const Json* unk_id = Member(*vocab, unk->get_ref<const std::string&>().c_str());
    if (unk_id == nullptr) return Invalid("model.unk_token", absl::StrCat(unk->dump(), " is not in model.vocab"));
    TOKENIZER_ASSIGN_OR_RETURN(config->bpe.unk_id, ToId(*unk_id, "model.unk_token"));
  }
  const Json* merges = Member(*model, "merges");
  if (merges == nullptr) return absl::OkStatus();
  if (!merges->is_array()) return Invalid("model.merges", absl::StrCat("expected an array, got ", merges->type_name()));
  return ParseMerges(*merges, config);
}

absl::StatusOr<TokenizerConfig> Parse(const Json& root) {
  if (!root.is_object()) return Invalid("(root)", absl::StrCat("expected an object, got ", root.type_name()));
  // `truncation` and `padding` are deliberately ignored: request length limits are the server's business.
  TokenizerConfig config;
  TOKENIZER_RETURN_IF_ERROR(ParseModel(root, &config));
  TOKENIZER_RETURN_IF_ERROR(ParseAddedTokens(root, &config));
  TOKENIZER_RETURN_IF_ERROR(ParseNormalizer(root, &config));
  TOKENIZER_RETURN_IF_ERROR(ParsePreTokenizer(root, &config));
  TOKENIZER_RETURN_IF_ERROR(ParsePostProcessor(root, &config));
  TOKENIZER_RETURN_IF_ERROR(ParseDecoder(root));
  return config;
}

#undef TOKENIZER_RETURN_IF_ERROR
#undef TOKENIZER_ASSIGN_OR_RETURN
#undef TOKENIZER_CONCAT
#undef TOKENIZER_CONCAT_INNER

}  // namespace

absl::StatusOr<TokenizerConfig> ParseTokenizerJson(std::string_view json) {
  try {
    return Parse(Json::parse(json.begin(), json.end()));
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", e.what()));
  }
}

}  // namespace octet
