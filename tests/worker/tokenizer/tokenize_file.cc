// tokenize_file: encodes a file of documents with octet's Tokenizer, for comparison with Hugging Face tokenizers
// (tests/worker/tokenizer/qwen3_5_tokenizer_test.py) and for throughput (bench/tokenizer_bench.py).
//
//   tokenize_file --tokenizer=tokenizer.json --input=docs.bin --ids_out=ids.bin [--decoded_out=dec.bin]
//                 [--repeat=N] [--classes_out=classes.json]
//
// --input holds UTF-8 documents separated by NUL bytes. --ids_out gets, per document, an int32 count followed by
// that many int32 ids (native byte order). --decoded_out gets Decode(ids) of each document, NUL-separated.
// --repeat encodes the whole input N times, timing each pass (ids come from the first). --classes_out writes the
// code point ranges of each class of worker/tokenizer/unicode.h, to check the tables against a regex engine.
// Prints one JSON line: load_seconds, documents, bytes, tokens, pass_seconds (one per pass).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "nlohmann/json.hpp"
#include "worker/tokenizer/tokenizer.h"
#include "worker/tokenizer/unicode.h"

ABSL_FLAG(std::string, tokenizer, "", "Path of a tokenizer.json (required)");
ABSL_FLAG(std::string, input, "", "File of NUL-separated UTF-8 documents (required)");
ABSL_FLAG(std::string, ids_out, "", "Where to write the ids: per document an int32 count, then the int32 ids");
ABSL_FLAG(std::string, decoded_out, "", "Where to write Decode(ids) of each document, NUL-separated");
ABSL_FLAG(int, repeat, 1, "Encode the whole input this many times, timing each pass");
ABSL_FLAG(std::string, classes_out, "", "Where to write the code point ranges of each character class (JSON)");

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

std::vector<std::string_view> SplitDocuments(std::string_view data) {
  std::vector<std::string_view> docs;
  size_t start = 0;
  while (start <= data.size()) {
    size_t end = data.find('\0', start);
    if (end == std::string_view::npos) end = data.size();
    docs.push_back(data.substr(start, end - start));
    start = end + 1;
  }
  if (!data.empty() && data.back() == '\0') docs.pop_back();  // a trailing separator ends the last document
  return docs;
}

// {"L": [[first, last], ...], "N": ..., "M": ..., "s": ...}: octet's classes over every scalar value.
nlohmann::json ClassRanges() {
  using octet::unicode::CharClass;
  const std::pair<const char*, CharClass> names[] = {
      {"L", CharClass::kLetter}, {"N", CharClass::kNumber}, {"M", CharClass::kMark}, {"s", CharClass::kWhiteSpace}};
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, cls] : names) {
    nlohmann::json ranges = nlohmann::json::array();
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      if (octet::unicode::Classify(cp) != cls) continue;
      if (!ranges.empty() && ranges.back()[1].get<uint32_t>() + 1 == cp) {
        ranges.back()[1] = static_cast<uint32_t>(cp);
      } else {
        ranges.push_back({static_cast<uint32_t>(cp), static_cast<uint32_t>(cp)});
      }
    }
    out[name] = std::move(ranges);
  }
  return out;
}

int Run() {
  if (const std::string path = absl::GetFlag(FLAGS_classes_out); !path.empty()) {
    std::ofstream(path) << ClassRanges().dump() << "\n";
  }
  const std::string tokenizer_path = absl::GetFlag(FLAGS_tokenizer);
  const std::string input_path = absl::GetFlag(FLAGS_input);
  if (tokenizer_path.empty() || input_path.empty()) {
    if (!absl::GetFlag(FLAGS_classes_out).empty()) return 0;
    std::cerr << "tokenize_file: --tokenizer and --input are required\n";
    return 2;
  }
  const auto load_start = Clock::now();
  absl::StatusOr<std::unique_ptr<octet::Tokenizer>> tokenizer = octet::Tokenizer::FromFile(tokenizer_path);
  if (!tokenizer.ok()) {
    std::cerr << "tokenize_file: " << tokenizer.status() << "\n";
    return 1;
  }
  const double load_seconds = SecondsSince(load_start);
  std::string data;
  if (!ReadFile(input_path, &data)) {
    std::cerr << "tokenize_file: cannot read " << input_path << "\n";
    return 1;
  }
  const std::vector<std::string_view> docs = SplitDocuments(data);

  size_t num_bytes = 0;
  for (const std::string_view doc : docs) num_bytes += doc.size();

  std::vector<std::vector<int32_t>> ids(docs.size());
  size_t num_tokens = 0;
  std::vector<double> pass_seconds;
  for (int pass = 0; pass < std::max(1, absl::GetFlag(FLAGS_repeat)); ++pass) {
    const auto start = Clock::now();
    size_t pass_tokens = 0;
    if (pass == 0) {
      for (size_t i = 0; i < docs.size(); ++i) {
        ids[i] = (*tokenizer)->Encode(docs[i]);
        pass_tokens += ids[i].size();
      }
      num_tokens = pass_tokens;
    } else {
      for (const std::string_view doc : docs) pass_tokens += (*tokenizer)->Encode(doc).size();
    }
    pass_seconds.push_back(SecondsSince(start));
    if (pass_tokens != num_tokens) {  // the word cache must not change results
      std::cerr << "tokenize_file: pass " << pass << " gave " << pass_tokens << " tokens, pass 0 " << num_tokens
                << "\n";
      return 1;
    }
  }

  if (const std::string path = absl::GetFlag(FLAGS_ids_out); !path.empty()) {
    std::ofstream out(path, std::ios::binary);
    for (const std::vector<int32_t>& doc_ids : ids) {
      const auto n = static_cast<int32_t>(doc_ids.size());
      out.write(reinterpret_cast<const char*>(&n), sizeof(n));
      out.write(reinterpret_cast<const char*>(doc_ids.data()), static_cast<std::streamsize>(n * sizeof(int32_t)));
    }
    if (!out) {
      std::cerr << "tokenize_file: cannot write " << path << "\n";
      return 1;
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_decoded_out); !path.empty()) {
    std::ofstream out(path, std::ios::binary);
    for (const std::vector<int32_t>& doc_ids : ids) {
      out << (*tokenizer)->Decode(doc_ids);
      out.put('\0');
    }
  }
  nlohmann::json summary = {{"load_seconds", load_seconds},
                            {"documents", docs.size()},
                            {"bytes", num_bytes},
                            {"tokens", num_tokens},
                            {"vocab_size", (*tokenizer)->vocab_size()},
                            {"pass_seconds", pass_seconds}};
  std::cout << summary.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Encodes NUL-separated documents with octet's tokenizer; see tokenize_file.cc");
  absl::ParseCommandLine(argc, argv);
  return Run();
}
