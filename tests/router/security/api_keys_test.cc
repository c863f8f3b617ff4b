// API key file parsing, the bearer header, the constant-time comparison and the key set.
#include "router/security/api_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace octet::router::security {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseApiKeysTest, SkipsBlankLinesAndCommentsAndTrims) {
  absl::StatusOr<std::vector<std::string>> keys =
      ParseApiKeys("# production keys\n\nsk-one\n   sk-two  \r\n\t# indented comment\nsk-three");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(*keys, (std::vector<std::string>{"sk-one", "sk-two", "sk-three"}));
}

TEST(ParseApiKeysTest, EmptyContentsHaveNoKeys) {
  absl::StatusOr<std::vector<std::string>> keys = ParseApiKeys("\n# nothing here\n   \n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->empty());
}

TEST(ParseApiKeysTest, AKeyWithInnerWhitespaceIsRefusedByLineNumberWithoutQuotingIt) {
  absl::StatusOr<std::vector<std::string>> keys = ParseApiKeys("sk-good\n# c\nsk-secret part\n");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("line 3"));
  EXPECT_THAT(std::string(keys.status().message()), Not(HasSubstr("secret")));
}

TEST(BearerTokenTest, TakesTheTokenOfABearerCredential) {
  EXPECT_EQ(BearerToken("Bearer sk-abc"), "sk-abc");
  EXPECT_EQ(BearerToken("bearer sk-abc"), "sk-abc");  // the scheme is case-insensitive
  EXPECT_EQ(BearerToken("BEARER   sk-abc  "), "sk-abc");
}

TEST(BearerTokenTest, AnythingElseHasNoToken) {
  EXPECT_EQ(BearerToken(""), std::nullopt);
  EXPECT_EQ(BearerToken("sk-abc"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer   "), std::nullopt);
  EXPECT_EQ(BearerToken("Bearersk-abc"), std::nullopt);
  EXPECT_EQ(BearerToken("Basic c2stYWJjOg=="), std::nullopt);
}

TEST(ConstantTimeEqualsTest, ComparesContentsAndLengths) {
  EXPECT_TRUE(ConstantTimeEquals("sk-abc", "sk-abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("sk-abc", "sk-abd"));
  EXPECT_FALSE(ConstantTimeEquals("sk-abc", "sk-ab"));  // a prefix
  EXPECT_FALSE(ConstantTimeEquals("sk-ab", "sk-abc"));
  EXPECT_FALSE(ConstantTimeEquals("sk-abc", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));  // past a NUL
}

TEST(ApiKeySetTest, ContainsExactlyItsKeys) {
  const ApiKeySet keys({"sk-one", "sk-two"});
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_TRUE(keys.Contains("sk-one"));
  EXPECT_TRUE(keys.Contains("sk-two"));
  EXPECT_FALSE(keys.Contains("sk-on"));
  EXPECT_FALSE(keys.Contains("sk-one "));
  EXPECT_FALSE(keys.Contains("SK-ONE"));
  EXPECT_FALSE(keys.Contains(""));
}

TEST(ApiKeySetTest, AuthorizesABearerHeaderWithAKeyOfTheSet) {
  ApiKeySet keys({"sk-one"});
  EXPECT_TRUE(keys.Authorizes("Bearer sk-one"));
  EXPECT_FALSE(keys.Authorizes("Bearer sk-two"));
  EXPECT_FALSE(keys.Authorizes("sk-one"));  // no scheme
  EXPECT_FALSE(keys.Authorizes("Basic sk-one"));
  EXPECT_FALSE(keys.Authorizes(""));
  keys.Add("sk-two");
  EXPECT_TRUE(keys.Authorizes("Bearer sk-two"));
}

TEST(ApiKeySetTest, AnEmptySetAuthorizesNothing) {
  const ApiKeySet keys;
  EXPECT_FALSE(keys.Authorizes("Bearer "));
  EXPECT_FALSE(keys.Authorizes("Bearer x"));
  EXPECT_FALSE(keys.Authorizes(""));
}

class ApiKeyFileTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }
  const std::string& Write(const std::string& contents) {
    path_ = ::testing::TempDir() + "api_keys_test_" + std::to_string(getpid());
    std::ofstream(path_, std::ios::binary) << contents;
    return path_;
  }
  std::string path_;
};

TEST_F(ApiKeyFileTest, LoadsTheKeysOfAFile) {
  absl::StatusOr<ApiKeySet> keys = ApiKeySet::LoadFile(Write("# keys\nsk-file-1\n\nsk-file-2\n"));
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Authorizes("Bearer sk-file-1"));
  EXPECT_TRUE(keys->Authorizes("Bearer sk-file-2"));
  EXPECT_FALSE(keys->Authorizes("Bearer # keys"));
}

TEST_F(ApiKeyFileTest, AFileWithoutKeysIsAnError) {
  absl::StatusOr<ApiKeySet> keys = ApiKeySet::LoadFile(Write("# no keys yet\n\n"));
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("no API key"));
}

TEST_F(ApiKeyFileTest, ABadLineIsReportedWithTheFileButNotTheKey) {
  const std::string& path = Write("sk-fine\nsk-very secret\n");
  absl::StatusOr<ApiKeySet> keys = ApiKeySet::LoadFile(path);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(keys.status().message()), HasSubstr("line 2"));
  EXPECT_THAT(std::string(keys.status().message()), Not(HasSubstr("secret")));
  EXPECT_THAT(std::string(keys.status().message()), Not(HasSubstr("sk-fine")));
}

TEST_F(ApiKeyFileTest, AMissingFileIsNotFound) {
  absl::StatusOr<ApiKeySet> keys = ApiKeySet::LoadFile(::testing::TempDir() + "no_such_api_key_file");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace octet::router::security
