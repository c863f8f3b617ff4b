// What `octet eval` shows of an EvalResult: a text table, a JSON document and a PNG bar chart drawn by gnuplot.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/eval/evaluator.h"

#include <nlohmann/json.hpp>

namespace octet::eval {

// Where and when a result was produced, for the JSON and the chart's title.
struct RunInfo {
  std::string date;    // UTC, ISO 8601 (UtcNow())
  std::string commit;  // `git rev-parse HEAD`, or "unknown"
  bool dirty = false;  // the working tree had uncommitted changes to tracked files
};

// The table `octet eval` prints: one row per setting (perplexity and its change, mean KL to the baseline, top-1
// agreement, weight bytes, KV bytes a token) under a header naming the model, text and windows.
std::string FormatTable(const EvalResult& result);

// Everything in the table plus run metadata; metric values stay unrounded.
nlohmann::json ReportJson(const EvalResult& result, const RunInfo& info);

// The gnuplot script FormatChart runs: two bar panels, perplexity and mean KL per setting, written to png_path.
std::string GnuplotScript(const EvalResult& result, const RunInfo& info, const std::string& png_path);
// Runs `gnuplot` (Debian's gnuplot-nox) on GnuplotScript. FailedPrecondition when gnuplot is not installed,
// Internal with gnuplot's own messages when it fails.
absl::Status WriteChart(const EvalResult& result, const RunInfo& info, const std::string& png_path);

// Current UTC time, e.g. "2026-11-27T14:03:12Z".
std::string UtcNow();
// `git -C dir rev-parse HEAD`, or "unknown" when git or the repository is missing.
std::string GitCommit(const std::string& dir);
// Whether tracked files of the repository at `dir` differ from HEAD (false when there is no repository).
bool GitDirty(const std::string& dir);

}  // namespace octet::eval
