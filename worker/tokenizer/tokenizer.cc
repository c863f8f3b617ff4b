// Tokenizer (see tokenizer.h): loading, the encode pipeline and decoding.
#include "worker/tokenizer/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "worker/tokenizer/byte_level.h"
#include "worker/tokenizer/nfc.h"
#include "worker/tokenizer/pre_tokenizer.h"

namespace octet {
namespace {

// Ids index dense tables; real vocabularies stay far below this.
constexpr int32_t kMaxTokenId = (1 << 24) - 1;

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tokenizer file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = FromJson(buffer.str());
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(), absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  OCTET_LOG(INFO, "tokenizer") << "loaded " << path << ": " << (*tokenizer)->vocab_size() << " tokens";
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json) {
  absl::StatusOr<TokenizerConfig> config = ParseTokenizerJson(json);
  if (!config.ok()) return config.status();
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  if (absl::Status s = tokenizer->Init(*std::move(config)); !s.ok()) return s;
  return tokenizer;
}

absl::Status Tokenizer::Init(TokenizerConfig config) {
  normalization_ = config.normalization;
  splits_ = std::move(config.splits);
  template_prefix_ = std::move(config.template_prefix);
  template_suffix_ = std::move(config.template_suffix);
  absl::StatusOr<std::unique_ptr<BpeModel>> bpe = BpeModel::Create(config.vocab, config.merges, config.bpe);
  if (!bpe.ok()) return bpe.status();
  bpe_ = *std::move(bpe);

  int32_t max_id = -1;
  for (const auto& [text, id] : config.vocab) max_id = std::max(max_id, id);
  for (const AddedToken& t : config.added_tokens) max_id = std::max(max_id, t.id);
  for (const int32_t id : template_prefix_) max_id = std::max(max_id, id);
  for (const int32_t id : template_suffix_) max_id = std::max(max_id, id);
  if (max_id < 0) return absl::InvalidArgumentError("tokenizer.json: model.vocab: has no tokens");
  if (max_id > kMaxTokenId) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: token id ", max_id, " is above ", kMaxTokenId));
  }
  const size_t size = static_cast<size_t>(max_id) + 1;

  // Each id's tokenizer.json text: the vocabulary's, overridden by an added token's (as HF's id_to_token).
  std::vector<const std::string*> text_of(size, nullptr);
  token_to_id_.reserve(config.vocab.size() + config.added_tokens.size());
  for (const auto& [text, id] : config.vocab) {
    text_of[id] = &text;
    token_to_id_.insert_or_assign(text, id);
  }
  is_special_.assign(size, 0);
  for (const AddedToken& t : config.added_tokens) {
    text_of[t.id] = &t.content;
    token_to_id_.insert_or_assign(t.content, t.id);
    is_special_[t.id] = t.special ? 1 : 0;
    if (!t.normalized) {
      raw_added_.Add(t);
    } else {
      AddedToken normalized = t;  // HF normalizes the content of normalized tokens before matching
      if (normalization_ == Normalization::kNfc) normalized.content = nfc::Normalize(t.content);
      normalized_added_.Add(normalized);
    }
  }
  // The ByteLevel decoder's view of each token: its characters mapped back to bytes (or kept as UTF-8 when
  // some character is outside the byte-level alphabet).
  token_offsets_.assign(size + 1, 0);
  for (size_t id = 0; id < size; ++id) {
    if (text_of[id] != nullptr) token_bytes_ += byte_level::DecodeOrKeep(*text_of[id]);
    token_offsets_[id + 1] = static_cast<uint32_t>(token_bytes_.size());
  }
  return absl::OkStatus();
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), template_prefix_.begin(), template_prefix_.end());
  if (raw_added_.empty()) {
    EncodeSegment(text, &ids);
  } else {
    std::vector<TextSegment> segments;
    raw_added_.Split(text, &segments);
    for (const TextSegment& s : segments) {
      if (s.token_id != TextSegment::kPlainText) {
        ids.push_back(s.token_id);
      } else {
        EncodeSegment(text.substr(s.begin, s.end - s.begin), &ids);
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), template_suffix_.begin(), template_suffix_.end());
  return ids;
}

void Tokenizer::EncodeSegment(std::string_view text, std::vector<int32_t>* ids) const {
  std::string normalized;
  if (normalization_ == Normalization::kNfc && !nfc::IsQuickNfc(text)) {
    nfc::AppendNormalized(text, &normalized);
    text = normalized;
  }
  if (normalized_added_.empty()) {
    EncodePlain(text, ids);
    return;
  }
  std::vector<TextSegment> segments;
  normalized_added_.Split(text, &segments);
  for (const TextSegment& s : segments) {
    if (s.token_id != TextSegment::kPlainText) {
      ids->push_back(s.token_id);
    } else {
      EncodePlain(text.substr(s.begin, s.end - s.begin), ids);
    }
  }
}

void Tokenizer::EncodePlain(std::string_view text, std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  if (splits_.empty()) {
    bpe_->Encode(text, ids);
    return;
  }
  std::vector<std::string_view> pieces;
  SplitText(splits_[0], text, &pieces);
  for (size_t k = 1; k < splits_.size(); ++k) {  // further splits refine every piece of the previous one
    std::vector<std::string_view> refined;
    for (std::string_view piece : pieces) SplitText(splits_[k], piece, &refined);
    pieces.swap(refined);
  }
  for (std::string_view piece : pieces) bpe_->Encode(piece, ids);
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (const int32_t id : ids) {
    if (skip_special_tokens && IsSpecial(id)) continue;
    out += TokenBytes(id);
  }
  return out;
}

std::string_view Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return std::string_view(token_bytes_).substr(token_offsets_[id], token_offsets_[id + 1] - token_offsets_[id]);
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  auto it = token_to_id_.find(absl::string_view(token.data(), token.size()));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

}  // namespace octet
