#include "worker/eval/eval_report.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace octet::eval {
namespace {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null and collects its stdout and stderr. NotFound when the
// program does not exist.
absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    const std::string message = absl::StrCat("cannot run ", argv[0], ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  ProcessResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      result.output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// A gnuplot single-quoted string literal ('' stands for one quote inside).
std::string GnuplotQuote(const std::string& s) { return absl::StrCat("'", absl::StrReplaceAll(s, {{"'", "''"}}), "'"); }

// 1,234,567
std::string WithCommas(int64_t n) {
  const std::string digits = std::to_string(n);
  const size_t first = n < 0 ? 1 : 0;  // after the sign
  std::string out = digits.substr(0, first);
  for (size_t i = first; i < digits.size(); ++i) {
    if (i > first && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// 34.54 MB, 16.10 GB (powers of 1000, as model sizes are quoted).
std::string HumanBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return absl::StrFormat("%.2f GB", b / 1e9);
  if (b >= 1e6) return absl::StrFormat("%.2f MB", b / 1e6);
  if (b >= 1e3) return absl::StrFormat("%.2f kB", b / 1e3);
  return absl::StrFormat("%d B", bytes);
}

// NaN and infinities have no JSON spelling: null.
nlohmann::json Number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

std::string FormatTable(const EvalResult& result) {
  std::string out = absl::StrFormat(
      "octet eval: %s on %s (backend %s)\n"
      "%s tokens (of %s in the text) in %d windows of %d: %s scored positions a setting\n"
      "KL and top-1 against the baseline %s (16-bit weights, BF16 KV cache) on the same windows\n\n",
      result.model_name, result.text_path, result.backend, WithCommas(result.num_tokens),
      WithCommas(result.text_tokens), result.num_windows, result.window, WithCommas(result.scored_positions),
      SettingName(kBaselineSetting));
  absl::StrAppendFormat(&out, "%-22s %11s %9s %14s %9s %11s %9s\n", "setting (recipe/kv)", "perplexity", "vs base",
                        "mean KL (nat)", "top-1", "weights", "KV B/tok");
  const double base_ppl = result.settings.empty() ? NAN : result.settings[0].metrics.Perplexity();
  for (size_t i = 0; i < result.settings.size(); ++i) {
    const SettingResult& s = result.settings[i];
    const double ppl = s.metrics.Perplexity();
    const std::string name = SettingName(s.setting) + (i == 0 ? " (baseline)" : "");
    absl::StrAppendFormat(&out, "%-22s %11.4f %+8.3f%% %14.3e %8.3f%% %11s %9s\n", name, ppl,
                          100.0 * (ppl / base_ppl - 1.0), s.metrics.MeanKl(), 100.0 * s.metrics.Top1Agreement(),
                          HumanBytes(s.weight_bytes), WithCommas(s.kv_bytes_per_token));
  }
  return out;
}

nlohmann::json ReportJson(const EvalResult& result, const RunInfo& info) {
  nlohmann::json settings = nlohmann::json::array();
  for (const SettingResult& s : result.settings) {
    settings.push_back({
        {"name", SettingName(s.setting)},
        {"recipe", std::string(Fp8RecipeName(s.setting.recipe))},
        {"kv_cache_dtype", KvDtypeName(s.setting.kv_dtype)},
        {"perplexity", Number(s.metrics.Perplexity())},
        {"mean_nll", Number(s.metrics.MeanNll())},
        {"mean_kl", Number(s.metrics.MeanKl())},
        {"top1_agreement", Number(s.metrics.Top1Agreement())},
        {"scored_positions", s.metrics.num_positions},
        {"weight_bytes", s.weight_bytes},
        {"fp8_weight_bytes", s.fp8_weight_bytes},
        {"fp8_linear_layers", s.fp8_layers},
        {"bf16_linear_layers", s.other_layers},
        {"kv_bytes_per_token", s.kv_bytes_per_token},
        {"state_bytes_per_sequence", s.state_bytes_per_sequence},
        {"forward_seconds", Number(s.forward_seconds)},
    });
  }
  return {
      {"model", result.model_name},
      {"model_dir", result.model_dir},
      {"text_file", result.text_path},
      {"text_tokens", result.text_tokens},
      {"num_tokens", result.num_tokens},
      {"window", result.window},
      {"num_windows", result.num_windows},
      {"scored_positions", result.scored_positions},
      {"backend", result.backend},
      {"baseline", SettingName(kBaselineSetting)},
      {"kl", "KL(P_baseline || P_setting) in nats, mean over scored positions"},
      {"date", info.date},
      {"commit", info.commit},
      {"worktree_dirty", info.dirty},
      {"settings", settings},
  };
}

std::string GnuplotScript(const EvalResult& result, const RunInfo& info, const std::string& png_path) {
  const int width = std::max(900, 2 * (200 + 70 * static_cast<int>(result.settings.size())));
  std::string s = absl::StrFormat(
      "set terminal pngcairo noenhanced size %d,560 font ',10'\n"
      "set output %s\n"
      "$data << EOD\n",
      width, GnuplotQuote(png_path));
  for (const SettingResult& r : result.settings) {
    absl::StrAppendFormat(&s, "\"%s\" %.9g %.9g %.9g\n", SettingName(r.setting), r.metrics.Perplexity(),
                          r.metrics.MeanKl(), r.metrics.Top1Agreement());
  }
  const std::string title =
      absl::StrFormat("octet eval: %s on %s, %s tokens, windows of %d (commit %.12s%s, %s)", result.model_name,
                      std::filesystem::path(result.text_path).filename().string(), WithCommas(result.num_tokens),
                      result.window, info.commit, info.dirty ? "+dirty" : "", info.date);
  absl::StrAppend(&s, "EOD\n", "set multiplot layout 1,2 title ", GnuplotQuote(title), "\n",
                  "set style fill solid 0.85 border -1\n"
                  "set boxwidth 0.7\n"
                  "set xtics rotate by -35 nomirror noenhanced\n"
                  "set grid ytics\n"
                  "set key off\n",
                  absl::StrFormat("set xrange [-0.6:%.1f]\n", static_cast<double>(result.settings.size()) - 0.4),
                  // Perplexity: bars from 0 so that their heights compare honestly; the labels carry the digits.
                  "stats $data using 2 nooutput\n"
                  "set yrange [0:STATS_max*1.15]\n"
                  "set title 'Perplexity (lower is better)'\n"
                  "plot $data using 0:2:xtic(1) with boxes lc rgb '#4472c4', \\\n"
                  "     '' using 0:2:(sprintf('%.4f', $2)) with labels offset 0,0.8 font ',9'\n",
                  "stats $data using 3 nooutput\n"
                  "set yrange [0:(STATS_max > 0 ? STATS_max*1.2 : 1e-6)]\n"
                  "set format y '%.1e'\n"
                  "set title 'Mean KL(P_bf16 || P_setting) per token, nats'\n"
                  "plot $data using 0:3:xtic(1) with boxes lc rgb '#ed7d31', \\\n"
                  "     '' using 0:3:(sprintf('%.2e', $3)) with labels offset 0,0.8 font ',9'\n",
                  "unset multiplot\n");
  return s;
}

absl::Status WriteChart(const EvalResult& result, const RunInfo& info, const std::string& png_path) {
  char script_path[] = "/tmp/octet-eval-XXXXXX.gp";
  const int fd = mkstemps(script_path, 3);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create a temporary file: ", std::strerror(errno)));
  close(fd);
  {
    std::ofstream script(script_path);
    script << GnuplotScript(result, info, png_path);
    if (!script) {
      std::remove(script_path);
      return absl::InternalError(absl::StrCat("cannot write ", script_path));
    }
  }
  absl::StatusOr<ProcessResult> run = RunProcess({"gnuplot", script_path});
  std::remove(script_path);
  if (!run.ok()) {
    if (absl::IsNotFound(run.status())) {
      return absl::FailedPreconditionError("gnuplot is not installed (Debian: gnuplot-nox; scripts/setup installs it)");
    }
    return run.status();
  }
  if (run->exit_code != 0) {
    return absl::InternalError(absl::StrCat("gnuplot failed (exit ", run->exit_code, ") drawing ", png_path, ": ",
                                            absl::StripTrailingAsciiWhitespace(run->output)));
  }
  return absl::OkStatus();
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string GitCommit(const std::string& dir) {
  absl::StatusOr<ProcessResult> run = RunProcess({"git", "-C", dir, "rev-parse", "HEAD"});
  if (!run.ok() || run->exit_code != 0) return "unknown";
  const std::string commit(absl::StripAsciiWhitespace(run->output));
  if ((commit.size() != 40 && commit.size() != 64) || commit.find_first_not_of("0123456789abcdef") != std::string::npos)
    return "unknown";
  return commit;
}

bool GitDirty(const std::string& dir) {
  absl::StatusOr<ProcessResult> run = RunProcess({"git", "-C", dir, "status", "--porcelain", "--untracked-files=no"});
  return run.ok() && run->exit_code == 0 && !absl::StripAsciiWhitespace(run->output).empty();
}

}  // namespace octet::eval
