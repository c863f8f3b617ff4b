// Helpers shared by the tokenizer tests: fixture files and their JSON (tests run from the repo root).
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizer/tokenizer.h"

namespace octet::testing {

inline constexpr char kFixtureDir[] = "tests/fixtures/tokenizer/";

inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(kFixtureDir + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << kFixtureDir << name << " (run from the repo root)";
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

inline nlohmann::json ReadJsonFixture(const std::string& name) { return nlohmann::json::parse(ReadFixture(name)); }

// The Qwen3-style tokenizer ("tokenizer.json") or the GPT-2-style one ("tokenizer_gpt2.json"); aborts the test
// binary if it does not load, since every test depends on it.
inline const Tokenizer& LoadFixtureTokenizer(const std::string& name) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto it = cache->find(name);
  if (it == cache->end()) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::FromFile(kFixtureDir + name);
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      std::abort();
    }
    it = cache->emplace(name, *std::move(t)).first;
  }
  return *it->second;
}

}  // namespace octet::testing
