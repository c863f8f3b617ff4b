#include "base/flag_names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"

ABSL_FLAG(int, max_tokens, 0, "test flag");
ABSL_FLAG(float, top_p, 0.0f, "test flag");
ABSL_FLAG(std::string, addr, "", "test flag");
ABSL_FLAG(bool, enable_prefix_caching, true, "test flag");

namespace octet {
namespace {

std::vector<std::string> Normalize(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return NormalizeFlagNames(static_cast<int>(argv.size()), argv.data());
}

TEST(NormalizeFlagNames, SpellsDashedFlagNamesWithUnderscores) {
  EXPECT_EQ(Normalize({"octet", "generate", "--max-tokens", "8", "--top-p=0.9", "-max-tokens=3", "hi"}),
            (std::vector<std::string>{"octet", "generate", "--max_tokens", "8", "--top_p=0.9", "-max_tokens=3", "hi"}));
}

TEST(NormalizeFlagNames, NegatedBooleansTakeEitherSpelling) {
  EXPECT_EQ(
      Normalize({"w", "--no-enable-prefix-caching", "--noenable-prefix-caching", "--enable-prefix-caching=false"}),
      (std::vector<std::string>{"w", "--noenable_prefix_caching", "--noenable_prefix_caching",
                                "--enable_prefix_caching=false"}));
  // Only booleans have a negated form, and it takes no value.
  EXPECT_EQ(Normalize({"w", "--no-max-tokens", "--no-enable-prefix-caching=1"}),
            (std::vector<std::string>{"w", "--no-max-tokens", "--no-enable-prefix-caching=1"}));
}

TEST(NormalizeFlagNames, LeavesEverythingElseAlone) {
  const std::vector<std::string> args = {"octet",          "generate",      "--addr=a-b:1", "--max_tokens=2",
                                         "--not-a-flag=1", "a-dashed-word", "--",           "--max-tokens"};
  EXPECT_EQ(Normalize(args), args);
}

}  // namespace
}  // namespace octet
