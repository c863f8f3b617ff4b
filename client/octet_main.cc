// octet: the command-line client. `octet generate --addr HOST:PORT "prompt"` streams a completion to stdout;
// `octet bench --addr HOST:PORT` measures a server under load; `octet eval --model DIR --text FILE` scores FP8
// settings against BF16 in-process on the CPU.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/flag_names.h"
#include "client/bench/bench_report.h"
#include "client/bench/bench_stats.h"
#include "client/bench/serving_bench.h"
#include "client/bench/workload.h"
#include "client/chat_command.h"
#include "client/client.h"
#include "worker/eval/eval_report.h"
#include "worker/eval/evaluator.h"
#include "worker/runtime/cpu_backend.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051", "Router (or worker) address, HOST:PORT");
ABSL_FLAG(int32_t, max_tokens, 256,
          "generate: maximum tokens to generate (0: up to the context length); "
          "eval: evaluate only the first N tokens of the text (default: all)");
ABSL_FLAG(float, temperature, 1.0f, "Sampling temperature (0: greedy); bench: 0 unless given");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus sampling mass in (0, 1] (1: off)");
ABSL_FLAG(int32_t, top_k, 0, "Sample among the k most likely tokens (0: no limit)");
ABSL_FLAG(uint64_t, seed, 0,
          "generate: sampling seed (0: derived from the request); bench: seed of the prompts and arrival times");
ABSL_FLAG(std::string, system, "", "chat: the system message that starts the conversation");
ABSL_FLAG(std::string, request_id, "", "Request id for logs (the server assigns one when empty)");
ABSL_FLAG(absl::Duration, timeout, absl::InfiniteDuration(), "Deadline of the call, e.g. 30s (default: none)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5), "How long to wait for the connection");
ABSL_FLAG(bool, tls, false, "Connect over TLS, checking the server against the system's CA certificates");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA certificates to check the server's certificate against (implies --tls)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate, for servers that require one (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, api_key_file, "",
          "File whose first line (blank lines and '#' comments skipped) is the API key sent as 'authorization: "
          "Bearer <key>' (default: the OCTET_API_KEY environment variable, if set)");
ABSL_FLAG(bool, add_special_tokens, false, "tokenize: add the model's beginning-of-sequence token");
ABSL_FLAG(std::string, model, "", "eval: model folder (config.json, safetensors, tokenizer.json)");
ABSL_FLAG(std::string, text, "", "eval: UTF-8 text file to score");
ABSL_FLAG(std::string, recipes, "none,official,mlp-only,all", "eval: FP8 weight recipes, comma-separated");
ABSL_FLAG(std::string, kv, "fp8,bf16", "eval: KV cache dtypes (fp8, bf16, fp32), comma-separated");
ABSL_FLAG(int32_t, window, 0, "eval: tokens a window (0: min(model context, 512))");
ABSL_FLAG(int32_t, threads, 0, "eval: settings run concurrently (0: one per core, at most one per setting)");
ABSL_FLAG(std::string, json, "", "eval, bench: write the results as JSON to this file");
ABSL_FLAG(std::string, chart, "", "eval: draw perplexity and KL bars into this PNG (needs gnuplot)");
ABSL_FLAG(int32_t, num_prompts, 100, "bench: measured requests");
ABSL_FLAG(int32_t, input_len, 128, "bench: prompt tokens a request (shared prefix included)");
ABSL_FLAG(int32_t, output_len, 128, "bench: tokens generated a request (max_tokens, with ignore_eos)");
ABSL_FLAG(double, random_range_ratio, 0.0,
          "bench: 0: fixed lengths; R in (0, 1): each length uniform in [len * (1 - R), len * (1 + R)]");
ABSL_FLAG(int32_t, shared_prefix_len, 0, "bench: the first N prompt tokens are the same in every request");
ABSL_FLAG(double, request_rate, std::numeric_limits<double>::infinity(),
          "bench: requests a second, Poisson arrivals (inf: all at once)");
ABSL_FLAG(int32_t, max_concurrency, 0, "bench: most requests in flight at once (0: no cap)");
ABSL_FLAG(int32_t, warmup, 1, "bench: requests sent and finished before the measured ones, not counted");

namespace {

constexpr char kUsage[] =
    "octet <command> [flags] [args]\n"
    "  generate --addr HOST:PORT [--max-tokens N --temperature T --top-p P --top-k K --seed S --timeout D] PROMPT\n"
    "           streams the completion of PROMPT (\"-\" reads it from stdin) to stdout\n"
    "  chat --addr HOST:PORT [--system TEXT] [sampling flags]\n"
    "           a conversation through the router: each stdin line is a turn, the reply streams to stdout;\n"
    "           /reset starts over, /exit or end of input ends it\n"
    "  model-info (or info) --addr HOST:PORT   describes the served model\n"
    "  tokenize --addr HOST:PORT TEXT   prints the token ids of TEXT\n"
    "  bench --addr HOST:PORT [--num-prompts 100 --input-len 128 --output-len 128 --random-range-ratio R\n"
    "        --shared-prefix-len P --seed S --request-rate inf --max-concurrency C --warmup 1 --temperature 0\n"
    "        --timeout D --json OUT.json]\n"
    "           sends random token-id prompts (ignore_eos) on a Poisson schedule and prints throughput and\n"
    "           TTFT, TPOT, ITL and end-to-end latency (mean, median, p90, p99); exit 1 if any request failed\n"
    "  eval --model DIR --text FILE [--recipes none,official,mlp-only,all] [--kv fp8,bf16] [--window N]\n"
    "       [--max-tokens N] [--threads N] [--json OUT.json] [--chart OUT.png]\n"
    "           runs the model in-process on the CPU over FILE, teacher-forced in non-overlapping windows, under\n"
    "           every recipe x KV dtype, and prints perplexity, mean KL(P_bf16 || P_setting), top-1 agreement\n"
    "           with the baseline none/bf16, weight bytes and KV bytes a token\n"
    "Connection flags of generate, model-info, tokenize and bench: --tls (system CAs) or --tls-ca FILE,\n"
    "  --tls-cert FILE --tls-key FILE (client certificate), --api-key-file FILE (default: $OCTET_API_KEY)\n"
    "Flag names may be written with '-' or '_' (--max-tokens, --max_tokens).\n";

constexpr int kExitError = 1;  // the call or the connection failed
constexpr int kExitUsage = 2;

int PrintError(const absl::Status& status) {
  std::fprintf(stderr, "octet: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return kExitError;
}

int UsageError(std::string_view message) {
  std::fprintf(stderr, "octet: %.*s\n\nusage: %s", static_cast<int>(message.size()), message.data(), kUsage);
  return kExitUsage;
}

octet::client::CallOptions CallOptionsFromFlags() { return {.timeout = absl::GetFlag(FLAGS_timeout)}; }

// --connect-timeout, --tls*, and the API key from --api-key-file or $OCTET_API_KEY.
absl::StatusOr<octet::client::ConnectOptions> ConnectOptionsFromFlags() {
  octet::client::ConnectOptions options = {
      .timeout = absl::GetFlag(FLAGS_connect_timeout),
      .tls = absl::GetFlag(FLAGS_tls),
      .tls_ca_file = absl::GetFlag(FLAGS_tls_ca),
      .tls_cert_file = absl::GetFlag(FLAGS_tls_cert),
      .tls_key_file = absl::GetFlag(FLAGS_tls_key),
  };
  if (const std::string path = absl::GetFlag(FLAGS_api_key_file); !path.empty()) {
    absl::StatusOr<std::string> key = octet::client::ReadApiKeyFile(path);
    if (!key.ok()) return key.status();
    options.api_key = *std::move(key);
  } else if (const char* key = std::getenv("OCTET_API_KEY"); key != nullptr) {
    options.api_key = std::string(absl::StripAsciiWhitespace(key));
  }
  return options;
}

absl::StatusOr<std::unique_ptr<octet::client::Client>> ConnectFromFlags() {
  absl::StatusOr<octet::client::ConnectOptions> options = ConnectOptionsFromFlags();
  if (!options.ok()) return options.status();
  return octet::client::Client::Connect(absl::GetFlag(FLAGS_addr), *options);
}

int Generate(const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("generate takes exactly one PROMPT argument (quote it)");
  std::string prompt = args[0];
  if (prompt == "-") prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());

  octet::v1::GenerateRequest request;
  request.set_request_id(absl::GetFlag(FLAGS_request_id));
  request.set_prompt(prompt);
  octet::v1::SamplingParams* sampling = request.mutable_sampling();
  if (absl::GetFlag(FLAGS_max_tokens) != 0) sampling->set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  sampling->set_temperature(absl::GetFlag(FLAGS_temperature));
  sampling->set_top_p(absl::GetFlag(FLAGS_top_p));
  sampling->set_top_k(absl::GetFlag(FLAGS_top_k));
  sampling->set_seed(absl::GetFlag(FLAGS_seed));

  auto client = ConnectFromFlags();
  if (!client.ok()) return PrintError(client.status());
  bool stdout_failed = false;
  absl::Status status = (*client)->Generate(
      request,
      [&stdout_failed](const octet::v1::GenerateResponse& chunk) {
        // One flush per message: the text appears as the model produces it.
        if (std::fwrite(chunk.text().data(), 1, chunk.text().size(), stdout) != chunk.text().size() ||
            std::fflush(stdout) != 0) {
          stdout_failed = true;
          return false;
        }
        return true;
      },
      CallOptionsFromFlags());
  if (stdout_failed) return PrintError(absl::AbortedError("cannot write to stdout"));
  if (isatty(STDOUT_FILENO)) std::fputc('\n', stdout);  // piped output stays exactly the generated text
  if (!status.ok()) return PrintError(status);
  return 0;
}

int Chat(const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("chat takes no arguments: it reads the user's turns from stdin");
  octet::client::ChatOptions options;
  options.system = absl::GetFlag(FLAGS_system);
  if (absl::GetFlag(FLAGS_max_tokens) != 0) options.sampling.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  options.sampling.set_temperature(absl::GetFlag(FLAGS_temperature));
  options.sampling.set_top_p(absl::GetFlag(FLAGS_top_p));
  options.sampling.set_top_k(absl::GetFlag(FLAGS_top_k));
  options.sampling.set_seed(absl::GetFlag(FLAGS_seed));
  options.prompts = isatty(STDIN_FILENO);
  options.call = CallOptionsFromFlags();
  auto client = ConnectFromFlags();
  if (!client.ok()) return PrintError(client.status());
  const absl::Status status = octet::client::RunChat(**client, options, std::cin, stdout, stderr);
  if (!status.ok()) return PrintError(status);
  return 0;
}

int ModelInfo(const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("model-info takes no arguments");
  auto client = ConnectFromFlags();
  if (!client.ok()) return PrintError(client.status());
  absl::StatusOr<octet::v1::ModelInfo> info = (*client)->GetModelInfo(CallOptionsFromFlags());
  if (!info.ok()) return PrintError(info.status());
  std::printf(
      "model_name      %s\narchitecture    %s\ncontext_length  %d\nweight_dtype    %s\ncompute_dtype   %s\n"
      "kv_cache_dtype  %s\nvocab_size      %d\nbackend         %s\nprefix_caching  %s\n",
      info->model_name().c_str(), info->architecture().c_str(), info->context_length(), info->weight_dtype().c_str(),
      info->compute_dtype().c_str(), info->kv_cache_dtype().c_str(), info->vocab_size(), info->backend().c_str(),
      info->prefix_caching() ? "on" : "off");
  if (info->has_memory()) {  // workers that report their memory plan
    const octet::v1::MemoryReport& m = info->memory();
    std::printf(
        "weights_bytes   %lld\nkv_cache_bytes  %lld\nstate_bytes     %lld\nworkspace_bytes %lld\n"
        "device_bytes    %lld\nkv_cache_tokens %lld\nkv_tokens_fp8   %lld\nkv_tokens_bf16  %lld\n",
        static_cast<long long>(m.weights_bytes()), static_cast<long long>(m.kv_cache_bytes()),
        static_cast<long long>(m.state_bytes()), static_cast<long long>(m.workspace_bytes()),
        static_cast<long long>(m.device_total_bytes()), static_cast<long long>(m.kv_cache_tokens()),
        static_cast<long long>(m.kv_cache_tokens_fp8()), static_cast<long long>(m.kv_cache_tokens_bf16()));
  }
  return 0;
}

int Tokenize(const std::vector<std::string>& args) {
  if (args.size() != 1) return UsageError("tokenize takes exactly one TEXT argument (quote it)");
  auto client = ConnectFromFlags();
  if (!client.ok()) return PrintError(client.status());
  absl::StatusOr<std::vector<int32_t>> ids =
      (*client)->Tokenize(args[0], absl::GetFlag(FLAGS_add_special_tokens), CallOptionsFromFlags());
  if (!ids.ok()) return PrintError(ids.status());
  for (size_t i = 0; i < ids->size(); ++i) std::printf(i == 0 ? "%d" : " %d", (*ids)[i]);
  std::printf("\n");
  return 0;
}

// 42s, 3m05s, 1h02m.
std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return absl::StrFormat("%ds", s);
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
}

// Draws a progress bar on a terminal; elsewhere (logs, CI) writes a line every 30 seconds. `command` names the
// program in those lines ("octet eval"), `unit` what is counted ("windows").
class ProgressReporter {
 public:
  ProgressReporter(std::string command, std::string unit)
      : command_(std::move(command)),
        unit_(std::move(unit)),
        tty_(isatty(STDERR_FILENO) != 0),
        start_(Clock::now()),
        last_(start_) {}

  void operator()(int64_t done, int64_t total) {
    const Clock::time_point now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double since_last = std::chrono::duration<double>(now - last_).count();
    const bool finished = done == total;
    if (!finished && since_last < (tty_ ? 0.2 : 30.0)) return;
    last_ = now;
    const double left = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(total - done) : 0;
    const std::string eta = finished ? "done in " + Duration(elapsed) : Duration(left) + " left";
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
      std::fprintf(stderr, "\r[%s%s] %lld/%lld %s, %s\033[K%s", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, ' ').c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), unit_.c_str(), eta.c_str(), finished ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s: %lld/%lld %s (%.0f%%), %s\n", command_.c_str(), static_cast<long long>(done),
                   static_cast<long long>(total), unit_.c_str(), total > 0 ? 100.0 * done / total : 100.0, eta.c_str());
    }
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string command_;
  std::string unit_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_;
};

// The commit of the source tree the binary was built in (it lives in the build folder), else of the current folder.
octet::eval::RunInfo CurrentRunInfo() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string exe_dir = ec ? std::string(".") : exe.parent_path().string();
  const std::string dir = octet::eval::GitCommit(exe_dir) != "unknown" ? exe_dir : std::string(".");
  return {.date = octet::eval::UtcNow(), .commit = octet::eval::GitCommit(dir), .dirty = octet::eval::GitDirty(dir)};
}

int Eval(const std::vector<std::string>& args, bool max_tokens_given) {
  if (!args.empty()) return UsageError("eval takes no arguments (--model DIR --text FILE)");
  octet::eval::EvalOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.text_path = absl::GetFlag(FLAGS_text);
  if (options.model_dir.empty()) return UsageError("eval needs --model DIR");
  if (options.text_path.empty()) return UsageError("eval needs --text FILE");
  std::vector<octet::Fp8Recipe> recipes;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_recipes), ',', absl::SkipWhitespace())) {
    absl::StatusOr<octet::Fp8Recipe> recipe = octet::ParseFp8Recipe(std::string(name));
    if (!recipe.ok()) return UsageError(absl::StrCat("--recipes: ", recipe.status().message()));
    recipes.push_back(*recipe);
  }
  std::vector<octet::DType> kv_dtypes;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_kv), ',', absl::SkipWhitespace())) {
    absl::StatusOr<octet::DType> dtype = octet::ParseKvCacheDtype(std::string(name));
    if (!dtype.ok()) return UsageError(absl::StrCat("--kv: ", dtype.status().message()));
    kv_dtypes.push_back(*dtype);
  }
  if (recipes.empty() || kv_dtypes.empty()) return UsageError("--recipes and --kv each need at least one value");
  options.settings = octet::eval::SettingGrid(recipes, kv_dtypes);
  options.window = absl::GetFlag(FLAGS_window);
  if (options.window < 0) return UsageError("--window must be >= 0");
  options.max_tokens = max_tokens_given ? absl::GetFlag(FLAGS_max_tokens) : 0;
  if (options.max_tokens < 0) return UsageError("--max-tokens must be >= 0");
  int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) return UsageError("--threads must be >= 0");
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.num_threads = std::min(threads, static_cast<int>(options.settings.size()));
  ProgressReporter progress("octet eval", "windows");
  options.progress = [&progress](int64_t done, int64_t total) { progress(done, total); };

  octet::CpuBackend backend;
  absl::StatusOr<octet::eval::EvalResult> result = octet::eval::RunEval(options, backend);
  if (!result.ok()) return PrintError(result.status());
  const octet::eval::RunInfo info = CurrentRunInfo();
  std::fputs(octet::eval::FormatTable(*result).c_str(), stdout);
  std::fflush(stdout);

  int exit_code = 0;
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path);
    out << octet::eval::ReportJson(*result, info).dump(2) << "\n";
    out.close();
    if (!out) exit_code = PrintError(absl::UnavailableError(absl::StrCat("cannot write ", path)));
  }
  if (const std::string path = absl::GetFlag(FLAGS_chart); !path.empty()) {
    if (absl::Status s = octet::eval::WriteChart(*result, info, path); !s.ok()) exit_code = PrintError(s);
  }
  return exit_code;
}

int Bench(const std::vector<std::string>& args, bool temperature_given) {
  if (!args.empty()) return UsageError("bench takes no arguments");
  const octet::bench::WorkloadOptions workload = {
      .num_prompts = absl::GetFlag(FLAGS_num_prompts),
      .input_len = absl::GetFlag(FLAGS_input_len),
      .output_len = absl::GetFlag(FLAGS_output_len),
      .random_range_ratio = absl::GetFlag(FLAGS_random_range_ratio),
      .shared_prefix_len = absl::GetFlag(FLAGS_shared_prefix_len),
      .seed = absl::GetFlag(FLAGS_seed),
  };
  if (absl::Status s = octet::bench::ValidateWorkload(workload); !s.ok()) return UsageError(std::string(s.message()));
  const octet::bench::LoadOptions load = {
      .request_rate = absl::GetFlag(FLAGS_request_rate),
      .max_concurrency = absl::GetFlag(FLAGS_max_concurrency),
      .warmup = absl::GetFlag(FLAGS_warmup),
      .temperature = temperature_given ? absl::GetFlag(FLAGS_temperature) : 0.0f,  // greedy unless asked
      .seed = workload.seed,
      .timeout = absl::GetFlag(FLAGS_timeout),
  };
  if (absl::Status s = octet::bench::ValidateLoad(load); !s.ok()) return UsageError(std::string(s.message()));
  if (!(load.temperature >= 0.0f && std::isfinite(load.temperature))) {
    return UsageError(absl::StrCat("--temperature must be a finite number >= 0, got ", load.temperature));
  }

  auto client = ConnectFromFlags();
  if (!client.ok()) return PrintError(client.status());
  absl::StatusOr<octet::v1::ModelInfo> info = (*client)->GetModelInfo(CallOptionsFromFlags());
  if (!info.ok()) return PrintError(info.status());
  if (absl::Status s = octet::bench::CheckWorkloadFitsModel(workload, info->vocab_size(), info->context_length());
      !s.ok()) {
    return UsageError(std::string(s.message()));
  }
  const std::vector<octet::bench::BenchPrompt> prompts =
      octet::bench::BuildPrompts(workload, info->vocab_size(), load.warmup + workload.num_prompts);

  // The calls share one channel (the library's Client keeps its own private); it is up before the clock starts.
  const std::string address = absl::GetFlag(FLAGS_addr);
  absl::StatusOr<octet::client::ConnectOptions> connect_options = ConnectOptionsFromFlags();
  if (!connect_options.ok()) return PrintError(connect_options.status());
  absl::StatusOr<std::shared_ptr<grpc::Channel>> made = octet::client::MakeChannel(address, *connect_options);
  if (!made.ok()) return PrintError(made.status());
  std::shared_ptr<grpc::Channel> channel = *std::move(made);
  channel->WaitForConnected(std::chrono::system_clock::now() +
                            absl::ToChronoMilliseconds(absl::GetFlag(FLAGS_connect_timeout)));
  std::optional<ProgressReporter> progress;  // started by the first measured request: warm-up is not timed
  absl::StatusOr<octet::bench::BenchRun> run =
      octet::bench::RunServingBench(channel, prompts, load, [&progress](int64_t done, int64_t total) {
        if (!progress) progress.emplace("octet bench", "requests");
        (*progress)(done, total);
      });
  if (!run.ok()) return PrintError(run.status());

  const octet::bench::BenchMetrics metrics = octet::bench::ComputeMetrics(run->requests, run->duration_s);
  const octet::bench::BenchContext context = {
      .address = address,
      .model_name = info->model_name(),
      .backend = info->backend(),
      .date = octet::eval::UtcNow(),
      .workload = workload,
      .load = load,
  };
  std::fputs(octet::bench::FormatTable(context, metrics).c_str(), stdout);
  std::fflush(stdout);
  // Each distinct failure once, with how many requests it hit.
  std::map<std::string, int> failures;
  for (const octet::bench::RequestResult& r : run->requests) {
    if (!r.status.ok()) {
      ++failures[absl::StrCat(absl::StatusCodeToString(r.status.code()), ": ", r.status.message())];
    }
  }
  for (const auto& [failure, count] : failures) {
    std::fprintf(stderr, "octet: %d request%s failed: %s\n", count, count == 1 ? "" : "s", failure.c_str());
  }

  int exit_code = metrics.failed > 0 ? kExitError : 0;
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path);
    out << octet::bench::ReportJson(context, metrics, run->requests).dump(2) << "\n";
    out.close();
    if (!out) exit_code = PrintError(absl::UnavailableError(absl::StrCat("cannot write ", path)));
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is reported by fwrite, not by a signal
  std::vector<std::string> normalized = octet::NormalizeFlagNames(argc, argv);
  // --max-tokens has a default for generate; eval scores the whole text unless it is given. --temperature is 1 for
  // generate and 0 for bench unless given.
  const auto given = [&normalized](const std::string& name) {
    const std::string flag = "--" + name;
    for (const std::string& arg : normalized) {
      if (arg == "--") break;
      if (arg == flag || arg.starts_with(flag + "=")) return true;
    }
    return false;
  };
  const bool max_tokens_given = given("max_tokens");
  const bool temperature_given = given("temperature");
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(normalized_argv.size()), normalized_argv.data());
  if (positional.size() < 2) return UsageError("missing command");
  const std::string command = positional[1];
  const std::vector<std::string> args(positional.begin() + 2, positional.end());
  if (command == "generate") return Generate(args);
  if (command == "chat") return Chat(args);
  if (command == "model-info" || command == "info") return ModelInfo(args);
  if (command == "tokenize") return Tokenize(args);
  if (command == "eval") return Eval(args, max_tokens_given);
  if (command == "bench") return Bench(args, temperature_given);
  return UsageError("unknown command '" + command + "'");
}
