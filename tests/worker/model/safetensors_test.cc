#include "worker/model/safetensors.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/model/safetensors_test_util.h"

namespace octet {
namespace {

using ::octet::testing::BF16Bytes;
using ::octet::testing::BuildSafetensors;
using ::octet::testing::F32Bytes;
using ::octet::testing::RawSafetensors;
using ::octet::testing::ScopedTempDir;
using ::octet::testing::TestTensor;
using ::octet::testing::WriteFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  // Writes `content` and opens it.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(const std::string& content) {
    WriteFile(path_, content);
    return SafetensorsFile::Open(path_);
  }
  // Opens a file whose header is `header` over `data_bytes` zero bytes of data; expects failure.
  absl::Status OpenHeader(const std::string& header, size_t data_bytes = 64) {
    auto file = OpenBytes(RawSafetensors(header, std::string(data_bytes, '\0')));
    return file.status();
  }

  ScopedTempDir dir_;
  std::string path_ = dir_.File("model.safetensors");
};

TEST_F(SafetensorsTest, ReadsAGoodFile) {
  std::string f16(4, '\0');  // F16 1.0 = 0x3c00, -2.0 = 0xc000
  f16[1] = '\x3c';
  f16[3] = '\xc0';
  const std::vector<TestTensor> tensors = {
      {"model.w", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, 6})},
      {"model.b", "BF16", {4}, BF16Bytes({0.5f, -1.0f, 3.0f, 1e-3f})},
      {"h", "F16", {2}, f16},
      {"scalar", "F32", {}, F32Bytes({7.5f})},
      {"empty", "U8", {0, 4}, ""},
      {"ids", "I64", {1}, std::string(8, '\x01')},
  };
  auto file = OpenBytes(BuildSafetensors(tensors, {{"format", "pt"}}));
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsFile& f = **file;
  EXPECT_EQ(f.metadata().at("format"), "pt");
  ASSERT_EQ(f.tensors().size(), 6u);
  std::vector<std::string> names;
  for (const TensorView& t : f.tensors()) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("empty", "h", "ids", "model.b", "model.w", "scalar"));  // sorted

  const TensorView* w = f.Find("model.w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::kF32);
  EXPECT_THAT(w->shape, ElementsAre(2, 3));
  EXPECT_EQ(w->numel(), 6);
  EXPECT_EQ(w->nbytes, 24u);
  auto wf = ReadAsFloat32(*w);
  ASSERT_TRUE(wf.ok());
  EXPECT_THAT(*wf, ElementsAre(1, 2, 3, 4, 5, 6));

  auto bf = ReadAsFloat32(*f.Find("model.b"));
  ASSERT_TRUE(bf.ok());
  EXPECT_THAT(*bf, ElementsAre(0.5f, -1.0f, 3.0f, BF16ToFloat(FloatToBF16(1e-3f))));
  auto hf = ReadAsFloat32(*f.Find("h"));
  ASSERT_TRUE(hf.ok());
  EXPECT_THAT(*hf, ElementsAre(1.0f, -2.0f));

  const TensorView* scalar = f.Find("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->numel(), 1);
  EXPECT_THAT(*ReadAsFloat32(*scalar), ElementsAre(7.5f));

  const TensorView* empty = f.Find("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->numel(), 0);
  EXPECT_EQ(empty->nbytes, 0u);

  EXPECT_EQ(f.Find("missing"), nullptr);
  EXPECT_EQ(f.Find("model"), nullptr);  // prefix of a name is not a match

  auto ids = ReadAsFloat32(*f.Find("ids"));
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(), HasSubstr("ids"));
}

TEST_F(SafetensorsTest, DecodesFp8E4M3) {
  const std::string bytes = {'\x38', '\xc0', '\x7e', '\x01', '\x00', '\x7f'};
  auto file = OpenBytes(BuildSafetensors({{"q", "F8_E4M3", {6}, bytes}}));
  ASSERT_TRUE(file.ok()) << file.status();
  auto v = ReadAsFloat32(*(*file)->Find("q"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)[0], 1.0f);
  EXPECT_EQ((*v)[1], -2.0f);
  EXPECT_EQ((*v)[2], 448.0f);                // largest finite E4M3
  EXPECT_EQ((*v)[3], std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ((*v)[4], 0.0f);
  EXPECT_TRUE(std::isnan((*v)[5]));
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto file = SafetensorsFile::Open(dir_.File("nope.safetensors"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr("nope.safetensors"));
}

TEST_F(SafetensorsTest, DirectoryIsInvalid) {
  EXPECT_EQ(SafetensorsFile::Open(dir_.path().string()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SafetensorsTest, ShorterThanLengthPrefixIsDataLoss) {
  for (const std::string& content : {std::string(), std::string("\x05\x00\x00", 3), std::string(7, '\0')}) {
    auto file = OpenBytes(content);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << content.size();
    EXPECT_THAT(file.status().message(), HasSubstr(path_));
  }
}

TEST_F(SafetensorsTest, HeaderLongerThanFileIsDataLoss) {
  std::string content = RawSafetensors("{}", "");
  content[0] = 100;  // claims 100 header bytes, has 2
  auto file = OpenBytes(content);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), HasSubstr("header length 100"));
}

TEST_F(SafetensorsTest, AbsurdHeaderLengthIsInvalid) {
  std::string content = RawSafetensors("{}", "");
  content[7] = '\x7f';  // ~9e18 bytes
  EXPECT_EQ(OpenBytes(content).status().code(), absl::StatusCode::kInvalidArgument);
  content = RawSafetensors("{}", "");
  content[3] = '\x10';  // 256 MiB: over the 100 MB cap, before any truncation check
  EXPECT_EQ(OpenBytes(content).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SafetensorsTest, EmptyHeaderObjectIsAnEmptyFile) {
  auto file = OpenBytes(RawSafetensors("{}", ""));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->tensors().empty());
}

TEST_F(SafetensorsTest, HeaderMustBeAJsonObject) {
  for (const std::string header : {"", "{", "not json", "{\"a\": }", "[1, 2]", "42", "\"str\""}) {
    absl::Status s = OpenHeader(header);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << header;
    EXPECT_THAT(s.message(), HasSubstr("header")) << header;
  }
}

TEST_F(SafetensorsTest, MetadataMustBeStrings) {
  EXPECT_TRUE(OpenHeader(R"({"__metadata__": {"format": "pt"}})").ok());
  EXPECT_EQ(OpenHeader(R"({"__metadata__": {"n": 3}})").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenHeader(R"({"__metadata__": [1]})").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SafetensorsTest, UnknownDtypeNamesTensorAndDtype) {
  absl::Status s = OpenHeader(R"({"layer.w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]}})");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("layer.w"));
  EXPECT_THAT(s.message(), HasSubstr("F64"));
}

struct BadEntryCase {
  const char* label;
  const char* entry;  // the JSON value of tensor "t"
  absl::StatusCode code;
  const char* message;
};

// gtest would otherwise print the struct's bytes, padding included.
void PrintTo(const BadEntryCase& c, std::ostream* os) { *os << c.label; }

class SafetensorsBadEntryTest : public SafetensorsTest, public ::testing::WithParamInterface<BadEntryCase> {};

TEST_P(SafetensorsBadEntryTest, IsRejectedWithTensorName) {
  const BadEntryCase& c = GetParam();
  absl::Status s = OpenHeader(std::string(R"({"t": )") + c.entry + "}", /*data_bytes=*/64);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_THAT(s.message(), HasSubstr("'t'"));
  EXPECT_THAT(s.message(), HasSubstr(c.message));
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors"));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsBadEntryTest,
    ::testing::Values(
        BadEntryCase{"NotObject", "[1]", absl::StatusCode::kInvalidArgument, "not an object"},
        BadEntryCase{"NoDtype", R"({"shape": [1], "data_offsets": [0, 4]})", absl::StatusCode::kInvalidArgument,
                     "dtype"},
        BadEntryCase{"DtypeNotString", R"({"dtype": 1, "shape": [1], "data_offsets": [0, 4]})",
                     absl::StatusCode::kInvalidArgument, "dtype"},
        BadEntryCase{"NoShape", R"({"dtype": "F32", "data_offsets": [0, 4]})", absl::StatusCode::kInvalidArgument,
                     "shape"},
        BadEntryCase{"NegativeDim", R"({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]})",
                     absl::StatusCode::kInvalidArgument, "non-negative"},
        BadEntryCase{"FloatDim", R"({"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]})",
                     absl::StatusCode::kInvalidArgument, "non-negative"},
        BadEntryCase{"HugeDim", R"({"dtype": "F32", "shape": [18446744073709551615], "data_offsets": [0, 4]})",
                     absl::StatusCode::kInvalidArgument, "non-negative"},
        BadEntryCase{"ShapeOverflows",
                     R"({"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 4]})",
                     absl::StatusCode::kInvalidArgument, "too large"},
        BadEntryCase{"BytesOverflow", R"({"dtype": "I64", "shape": [4611686018427387904], "data_offsets": [0, 4]})",
                     absl::StatusCode::kInvalidArgument, "too large"},
        BadEntryCase{"NoOffsets", R"({"dtype": "F32", "shape": [1]})", absl::StatusCode::kInvalidArgument,
                     "data_offsets"},
        BadEntryCase{"ThreeOffsets", R"({"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]})",
                     absl::StatusCode::kInvalidArgument, "data_offsets"},
        BadEntryCase{"NegativeOffset", R"({"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]})",
                     absl::StatusCode::kInvalidArgument, "data_offsets"},
        BadEntryCase{"BeginAfterEnd", R"({"dtype": "F32", "shape": [1], "data_offsets": [8, 4]})",
                     absl::StatusCode::kInvalidArgument, "begin > end"},
        BadEntryCase{"PastData", R"({"dtype": "F32", "shape": [4], "data_offsets": [56, 72]})",
                     absl::StatusCode::kDataLoss, "past the data section"},
        BadEntryCase{"HugeEnd",
                     R"({"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551615]})",
                     absl::StatusCode::kDataLoss, "past the data section"},
        BadEntryCase{"SizeMismatch", R"({"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 24]})",
                     absl::StatusCode::kInvalidArgument, "needs 12"}),
    [](const ::testing::TestParamInfo<BadEntryCase>& info) { return info.param.label; });

TEST_F(SafetensorsTest, OverlappingTensorsAreRejected) {
  absl::Status s = OpenHeader(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'a'"));
  EXPECT_THAT(s.message(), HasSubstr("'b'"));
  EXPECT_THAT(s.message(), HasSubstr("overlap"));
  // A range inside a larger earlier one overlaps too, even past a tensor that ends sooner.
  EXPECT_EQ(OpenHeader(R"({"big": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                          "small": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
                          "late": {"dtype": "F32", "shape": [1], "data_offsets": [24, 28]}})")
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SafetensorsTest, HolesAndEmptyTensorsAreAccepted) {
  EXPECT_TRUE(OpenHeader(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                            "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                            "f": {"dtype": "F32", "shape": [0], "data_offsets": [2, 2]},
                            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})")
                  .ok());
}

// The mapping ends at a page boundary here, so a read one byte past the file would fault.
TEST_F(SafetensorsTest, LastTensorEndingAtPageBoundaryReadsExactly) {
  const auto build = [](uint64_t end) {
    std::string header =
        R"({"w": {"dtype": "F32", "shape": [1024], "data_offsets": [0, )" + std::to_string(end) + "]}}";
    header.resize(8192 - 8 - 4096, ' ');
    return RawSafetensors(header, F32Bytes(std::vector<float>(1024, 0.25f)));
  };
  ASSERT_EQ(build(4096).size(), 8192u);
  auto file = OpenBytes(build(4096));
  ASSERT_TRUE(file.ok()) << file.status();
  auto v = ReadAsFloat32(*(*file)->Find("w"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->back(), 0.25f);
  EXPECT_EQ(OpenBytes(build(4100)).status().code(), absl::StatusCode::kDataLoss);
}

// Every truncation of a valid file must fail cleanly: the last tensor ends at the last byte.
TEST_F(SafetensorsTest, EveryTruncationIsAnError) {
  const std::string full =
      BuildSafetensors({{"a", "F32", {3}, F32Bytes({1, 2, 3})}, {"b", "BF16", {2}, BF16Bytes({1, 2})}});
  ASSERT_TRUE(OpenBytes(full).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    auto file = OpenBytes(full.substr(0, n));
    EXPECT_FALSE(file.ok()) << "prefix of " << n << " bytes opened";
    EXPECT_TRUE(file.status().code() == absl::StatusCode::kDataLoss ||
                file.status().code() == absl::StatusCode::kInvalidArgument)
        << n << ": " << file.status();
  }
}

// Random corruption of the header never crashes (run under ASan/valgrind to check the reads).
TEST_F(SafetensorsTest, CorruptedHeadersNeverCrash) {
  const std::string full = BuildSafetensors(
      {{"a", "F32", {3}, F32Bytes({1, 2, 3})}, {"b", "BF16", {2, 1}, BF16Bytes({1, 2})}}, {{"format", "pt"}});
  std::mt19937 rng(7);
  int opened = 0;
  for (int i = 0; i < 300; ++i) {
    std::string bytes = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
    auto file = OpenBytes(bytes);
    if (!file.ok()) continue;
    ++opened;
    for (const TensorView& t : (*file)->tensors()) {
      auto v = ReadAsFloat32(t);  // touches every byte of every accepted tensor
      if (v.ok()) {
        EXPECT_EQ(v->size(), static_cast<size_t>(t.numel()));
      }
    }
  }
  EXPECT_GT(opened, 0);  // some flips land in the data section and stay valid
}

}  // namespace
}  // namespace octet
