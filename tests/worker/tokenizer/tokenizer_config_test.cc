// Malformed or unsupported tokenizer.json gives an error naming the field, never a crash.
#include "worker/tokenizer/tokenizer_config.h"

#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizer/tokenizer.h"

namespace octet {
namespace {

using Json = nlohmann::json;

// A small valid byte-level BPE tokenizer.json.
Json Minimal() {
  return Json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 3, "content": "<|end|>", "special": true, "normalized": false,
                      "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
              "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
              "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}
  })");
}

absl::Status Load(const std::string& json) { return Tokenizer::FromJson(json).status(); }

absl::Status LoadModified(const std::function<void(Json&)>& modify) {
  Json j = Minimal();
  modify(j);
  return Load(j.dump());
}

void ExpectError(const absl::Status& status, absl::StatusCode code, const std::string& mentions) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_NE(status.message().find(mentions), std::string::npos) << "\"" << mentions << "\" not in: " << status;
}

TEST(TokenizerConfigTest, MinimalConfigLoads) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromJson(Minimal().dump());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("abab<|end|>"), std::vector<int32_t>({2, 2, 3}));
  EXPECT_EQ((*t)->vocab_size(), 4);
}

TEST(TokenizerConfigTest, MalformedJson) {
  ExpectError(Load("{"), absl::StatusCode::kInvalidArgument, "parse error");
  ExpectError(Load(""), absl::StatusCode::kInvalidArgument, "parse error");
  ExpectError(Load("\xff\xfe"), absl::StatusCode::kInvalidArgument, "tokenizer.json");
  ExpectError(Load("[1, 2]"), absl::StatusCode::kInvalidArgument, "expected an object");
  ExpectError(Load("{}"), absl::StatusCode::kInvalidArgument, "model");
}

TEST(TokenizerConfigTest, ModelErrorsNameTheField) {
  using C = absl::StatusCode;
  ExpectError(LoadModified([](Json& j) { j["model"]["type"] = "WordPiece"; }), C::kInvalidArgument, "model.type");
  ExpectError(LoadModified([](Json& j) { j["model"]["dropout"] = 0.1; }), C::kInvalidArgument, "model.dropout");
  ExpectError(LoadModified([](Json& j) { j["model"]["byte_fallback"] = true; }), C::kInvalidArgument,
              "model.byte_fallback");
  ExpectError(LoadModified([](Json& j) { j["model"]["continuing_subword_prefix"] = "##"; }), C::kInvalidArgument,
              "model.continuing_subword_prefix");
  ExpectError(LoadModified([](Json& j) { j["model"]["fuse_unk"] = "yes"; }), C::kInvalidArgument, "model.fuse_unk");
  ExpectError(LoadModified([](Json& j) { j["model"]["unk_token"] = "<unk>"; }), C::kInvalidArgument, "model.unk_token");
  ExpectError(LoadModified([](Json& j) { j["model"]["vocab"] = Json::array(); }), C::kInvalidArgument, "model.vocab");
  ExpectError(LoadModified([](Json& j) { j["model"]["vocab"]["x"] = "seven"; }), C::kInvalidArgument,
              "model.vocab[\"x\"]");
  ExpectError(LoadModified([](Json& j) { j["model"]["vocab"]["x"] = -1; }), C::kInvalidArgument, "model.vocab[\"x\"]");
  ExpectError(LoadModified([](Json& j) {
                j["model"]["vocab"] = Json::object();
                j["added_tokens"] = Json::array();
                j["model"]["merges"] = Json::array();
              }),
              C::kInvalidArgument, "no tokens");
  ExpectError(LoadModified([](Json& j) { j["model"]["vocab"]["x"] = 1 << 30; }), C::kInvalidArgument, "token id");
  ExpectError(LoadModified([](Json& j) {
                j["model"]["merges"] = Json::array({Json::array({"a", "zz"})});
              }),
              C::kInvalidArgument, "model.merges[0]");
  ExpectError(LoadModified([](Json& j) { j["model"]["merges"] = Json::array({"b a"}); }), C::kInvalidArgument,
              "model.merges[0]");  // "ba" is not in the vocabulary
  ExpectError(LoadModified([](Json& j) { j["model"]["merges"] = Json::array({"ab"}); }), C::kInvalidArgument,
              "model.merges[0]");
  ExpectError(LoadModified([](Json& j) { j["model"]["merges"] = Json::array({42}); }), C::kInvalidArgument,
              "model.merges[0]");
  ExpectError(LoadModified([](Json& j) { j["model"]["merges"] = "a b"; }), C::kInvalidArgument, "model.merges");
}

TEST(TokenizerConfigTest, AddedTokenErrorsNameTheField) {
  using C = absl::StatusCode;
  ExpectError(LoadModified([](Json& j) { j["added_tokens"] = Json::object(); }), C::kInvalidArgument, "added_tokens");
  ExpectError(LoadModified([](Json& j) { j["added_tokens"][0]["single_word"] = true; }), C::kInvalidArgument,
              "added_tokens[0].single_word");
  ExpectError(LoadModified([](Json& j) { j["added_tokens"][0]["content"] = ""; }), C::kInvalidArgument,
              "added_tokens[0].content");
  ExpectError(LoadModified([](Json& j) { j["added_tokens"][0].erase("id"); }), C::kInvalidArgument,
              "added_tokens[0].id");
  ExpectError(LoadModified([](Json& j) { j["added_tokens"][0]["id"] = 2.5; }), C::kInvalidArgument,
              "added_tokens[0].id");
  ExpectError(LoadModified([](Json& j) { j["added_tokens"][0]["special"] = 1; }), C::kInvalidArgument,
              "added_tokens[0].special");
}

TEST(TokenizerConfigTest, PipelineErrorsNameTheField) {
  using C = absl::StatusCode;
  ExpectError(LoadModified([](Json& j) {
                j["normalizer"] = {{"type", "NFKC"}};
              }),
              C::kInvalidArgument, "normalizer.type");
  ExpectError(LoadModified([](Json& j) { j["normalizer"] = "NFC"; }), C::kInvalidArgument, "normalizer");
  ExpectError(LoadModified([](Json& j) { j.erase("pre_tokenizer"); }), C::kInvalidArgument, "pre_tokenizer");
  ExpectError(LoadModified([](Json& j) {
                j["pre_tokenizer"] = {{"type", "Whitespace"}};
              }),
              C::kInvalidArgument, "pre_tokenizer.type");
  ExpectError(LoadModified([](Json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }), C::kInvalidArgument,
              "pre_tokenizer.add_prefix_space");
  const Json split = {{"type", "Split"},
                      {"pattern", {{"Regex", std::string(kQwen2Regex)}}},
                      {"behavior", "Isolated"},
                      {"invert", false}};
  ExpectError(LoadModified([&](Json& j) {
                j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {split}}};
              }),
              C::kInvalidArgument, "must end with a ByteLevel");
  ExpectError(LoadModified([&](Json& j) {
                Json s = split;
                s["pattern"]["Regex"] = "\\w+|[^\\w\\s]+";
                j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {s, j["pre_tokenizer"]}}};
              }),
              C::kUnimplemented, "\\w+|[^\\w\\s]+");
  ExpectError(LoadModified([&](Json& j) {
                Json s = split;
                s["behavior"] = "Removed";
                j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {s, j["pre_tokenizer"]}}};
              }),
              C::kInvalidArgument, "pre_tokenizer.pretokenizers[0].behavior");
  ExpectError(LoadModified([&](Json& j) {
                Json s = split;
                s["pattern"] = {{"String", " "}};
                j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {s, j["pre_tokenizer"]}}};
              }),
              C::kInvalidArgument, "pre_tokenizer.pretokenizers[0].pattern");
  ExpectError(LoadModified([&](Json& j) {
                j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {j["pre_tokenizer"], split}}};
              }),
              C::kInvalidArgument, "pre_tokenizer.pretokenizers[1]");
  ExpectError(LoadModified([](Json& j) { j.erase("decoder"); }), C::kInvalidArgument, "decoder");
  ExpectError(LoadModified([](Json& j) {
                j["decoder"] = {{"type", "WordPiece"}};
              }),
              C::kInvalidArgument, "decoder.type");
  ExpectError(LoadModified([](Json& j) {
                j["post_processor"] = {{"type", "RobertaProcessing"}};
              }),
              C::kInvalidArgument, "post_processor.type");
  ExpectError(LoadModified([](Json& j) {
                j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing",
                  "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                  "special_tokens": {}})");
              }),
              C::kInvalidArgument, "post_processor.special_tokens");
}

TEST(TokenizerConfigTest, SupportedVariantsLoad) {
  // Merges as "a b" strings, a Sequence normalizer, a Sequence post-processor with a template.
  Json j = Minimal();
  j["model"]["merges"] = Json::array({"a b"});
  j["normalizer"] = Json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFC"}]})");
  j["post_processor"] = Json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
       "special_tokens": {"<s>": {"id": "<s>", "ids": [3], "tokens": ["<s>"]}}}]})");
  absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromJson(j.dump());
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Encode("ab", /*add_special_tokens=*/true), std::vector<int32_t>({3, 2}));
  EXPECT_EQ((*t)->Encode("ab", /*add_special_tokens=*/false), std::vector<int32_t>({2}));
}

// The pipeline scripts/make_qwen3_5_tokenizer.py writes: Split(Qwen3.5 regex, Isolated), ByteLevel without its
// regex, and ignore_merges (tiktoken emits a piece that is itself a token as is).
TEST(TokenizerConfigTest, Qwen3_5PipelineLoads) {
  Json j = Minimal();
  const Json split = {{"type", "Split"},
                      {"pattern", {{"Regex", std::string(kQwen3_5Regex)}}},
                      {"behavior", "Isolated"},
                      {"invert", false}};
  const Json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {split, byte_level}}};
  j["model"]["ignore_merges"] = true;
  absl::StatusOr<TokenizerConfig> config = ParseTokenizerJson(j.dump());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->splits, std::vector<SplitPattern>({SplitPattern::kQwen3_5}));
  EXPECT_TRUE(config->bpe.ignore_merges);
}

}  // namespace
}  // namespace octet
