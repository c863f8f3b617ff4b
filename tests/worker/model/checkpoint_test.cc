#include "worker/model/checkpoint.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/worker/model/safetensors_test_util.h"

namespace octet {
namespace {

using ::octet::testing::BuildSafetensors;
using ::octet::testing::F32Bytes;
using ::octet::testing::ScopedTempDir;
using ::octet::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class CheckpointTest : public ::testing::Test {
 protected:
  void WriteShards() {
    WriteFile(dir_.File("model-00001-of-00002.safetensors"),
              BuildSafetensors({{"model.embed_tokens.weight", "F32", {2, 2}, F32Bytes({1, 2, 3, 4})},
                                {"model.norm.weight", "F32", {2}, F32Bytes({5, 6})}}));
    WriteFile(dir_.File("model-00002-of-00002.safetensors"),
              BuildSafetensors({{"lm_head.weight", "F32", {2, 2}, F32Bytes({7, 8, 9, 10})}}));
  }
  void WriteIndex(const nlohmann::json& weight_map) {
    WriteFile(dir_.File("model.safetensors.index.json"),
              nlohmann::json{{"metadata", {{"total_size", 40}}}, {"weight_map", weight_map}}.dump(2));
  }
  nlohmann::json GoodWeightMap() const {
    return {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
            {"model.norm.weight", "model-00001-of-00002.safetensors"},
            {"lm_head.weight", "model-00002-of-00002.safetensors"}};
  }

  ScopedTempDir dir_;
};

TEST_F(CheckpointTest, OpensSingleFile) {
  WriteFile(dir_.File("model.safetensors"),
            BuildSafetensors({{"w", "F32", {2}, F32Bytes({1, 2})}, {"b", "F32", {1}, F32Bytes({3})}}));
  auto ckpt = Checkpoint::Open(dir_.path().string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_THAT((*ckpt)->Names(), ElementsAre("b", "w"));
  EXPECT_EQ((*ckpt)->num_tensors(), 2u);
  EXPECT_EQ((*ckpt)->files().size(), 1u);
  const TensorView* w = (*ckpt)->Find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_THAT(*ReadAsFloat32(*w), ElementsAre(1, 2));
  EXPECT_EQ((*ckpt)->Find("x"), nullptr);
  auto missing = (*ckpt)->Get("x");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("'x'"));
}

TEST_F(CheckpointTest, OpensShardedIndex) {
  WriteShards();
  WriteIndex(GoodWeightMap());
  auto ckpt = Checkpoint::Open(dir_.path().string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_THAT((*ckpt)->Names(), ElementsAre("lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"));
  EXPECT_EQ((*ckpt)->files().size(), 2u);
  auto head = (*ckpt)->Get("lm_head.weight");
  ASSERT_TRUE(head.ok());
  EXPECT_THAT(*ReadAsFloat32(**head), ElementsAre(7, 8, 9, 10));
  EXPECT_THAT(*ReadAsFloat32(*(*ckpt)->Find("model.norm.weight")), ElementsAre(5, 6));
}

TEST_F(CheckpointTest, IndexWinsOverSingleFileAndOnlyListsMappedTensors) {
  WriteShards();
  nlohmann::json map = GoodWeightMap();
  map.erase("model.norm.weight");  // present in the shard, but not mapped: not part of the model
  WriteIndex(map);
  WriteFile(dir_.File("model.safetensors"), BuildSafetensors({{"other", "F32", {1}, F32Bytes({1})}}));
  auto ckpt = Checkpoint::Open(dir_.path().string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_THAT((*ckpt)->Names(), ElementsAre("lm_head.weight", "model.embed_tokens.weight"));
}

TEST_F(CheckpointTest, MissingShardIsNotFound) {
  WriteShards();
  nlohmann::json map = GoodWeightMap();
  map["extra.weight"] = "model-00003-of-00003.safetensors";
  WriteIndex(map);
  auto ckpt = Checkpoint::Open(dir_.path().string());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(), HasSubstr("model-00003-of-00003.safetensors"));
}

TEST_F(CheckpointTest, TensorMappedToWrongShardIsNotFound) {
  WriteShards();
  nlohmann::json map = GoodWeightMap();
  map["lm_head.weight"] = "model-00001-of-00002.safetensors";
  WriteIndex(map);
  auto ckpt = Checkpoint::Open(dir_.path().string());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(), HasSubstr("lm_head.weight"));
  EXPECT_THAT(ckpt.status().message(), HasSubstr("model-00001-of-00002.safetensors"));
}

TEST_F(CheckpointTest, CorruptShardReportsItsPath) {
  WriteShards();
  WriteIndex(GoodWeightMap());
  WriteFile(dir_.File("model-00002-of-00002.safetensors"), "garbage");
  auto ckpt = Checkpoint::Open(dir_.path().string());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(ckpt.status().message(), HasSubstr("model-00002-of-00002.safetensors"));
}

TEST_F(CheckpointTest, MalformedIndexIsInvalid) {
  WriteShards();
  for (const std::string text :
       {"not json", "[]", R"({"metadata": {}})", R"({"weight_map": {}})", R"({"weight_map": {"a": 3}})",
        R"({"weight_map": {"a": "../x.safetensors"}})", R"({"weight_map": {"a": "/etc/passwd"}})"}) {
    WriteFile(dir_.File("model.safetensors.index.json"), text);
    auto ckpt = Checkpoint::Open(dir_.path().string());
    EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument) << text << ": " << ckpt.status();
    EXPECT_THAT(ckpt.status().message(), HasSubstr("model.safetensors.index.json")) << text;
  }
}

TEST_F(CheckpointTest, FallsBackToAllSafetensorsFiles) {
  WriteShards();
  auto ckpt = Checkpoint::Open(dir_.path().string());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->num_tensors(), 3u);

  WriteFile(dir_.File("dup.safetensors"), BuildSafetensors({{"lm_head.weight", "F32", {1}, F32Bytes({0})}}));
  auto dup = Checkpoint::Open(dir_.path().string());
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("lm_head.weight"));
}

TEST_F(CheckpointTest, EmptyOrMissingFolderIsNotFound) {
  EXPECT_EQ(Checkpoint::Open(dir_.path().string()).status().code(), absl::StatusCode::kNotFound);
  auto missing = Checkpoint::Open(dir_.File("nope"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

}  // namespace
}  // namespace octet
