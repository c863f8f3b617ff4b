// octet: the command-line client. `octet generate --addr HOST:PORT "prompt"` streams a completion to stdout.
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/cli_flags.h"
#include "client/client.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50051", "Router (or worker) address, HOST:PORT");
ABSL_FLAG(int32_t, max_tokens, 256, "Maximum tokens to generate (0: up to the context length)");
ABSL_FLAG(float, temperature, 1.0f, "Sampling temperature (0: greedy)");
ABSL_FLAG(float, top_p, 1.0f, "Nucleus sampling mass in (0, 1] (1: off)");
ABSL_FLAG(int32_t, top_k, 0, "Sample among the k most likely tokens (0: no limit)");
ABSL_FLAG(uint64_t, seed, 0, "Sampling seed (0: derived from the request)");
ABSL_FLAG(std::string, request_id, "", "Request id for logs (the server assigns one when empty)");
ABSL_FLAG(absl::Duration, timeout, absl::InfiniteDuration(), "Deadline of the call, e.g. 30s (default: none)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(5), "How long to wait for the connection");
ABSL_FLAG(bool, add_special_tokens, false, "tokenize: add the model's beginning-of-sequence token");

namespace {

constexpr char kUsage[] =
    "octet <command> [flags] [args]\n"
    "  generate --addr HOST:PORT [--max-tokens N --temperature T --top-p P --top-k K --seed S --timeout D] PROMPT\n"
    "           streams the completion of PROMPT (\"-\" reads it from stdin) to stdout\n"
    "  model-info --addr HOST:PORT      describes the served model\n"
    "  tokenize --addr HOST:PORT TEXT   prints the token ids of TEXT\n"
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

absl::StatusOr<std::unique_ptr<octet::client::Client>> ConnectFromFlags() {
  return octet::client::Client::Connect(absl::GetFlag(FLAGS_addr), {.timeout = absl::GetFlag(FLAGS_connect_timeout)});
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

int ModelInfo(const std::vector<std::string>& args) {
  if (!args.empty()) return UsageError("model-info takes no arguments");
  auto client = ConnectFromFlags();
  if (!client.ok()) return PrintError(client.status());
  absl::StatusOr<octet::v1::ModelInfo> info = (*client)->GetModelInfo(CallOptionsFromFlags());
  if (!info.ok()) return PrintError(info.status());
  std::printf(
      "model_name      %s\narchitecture    %s\ncontext_length  %d\nweight_dtype    %s\ncompute_dtype   %s\n"
      "kv_cache_dtype  %s\nvocab_size      %d\nbackend         %s\n",
      info->model_name().c_str(), info->architecture().c_str(), info->context_length(), info->weight_dtype().c_str(),
      info->compute_dtype().c_str(), info->kv_cache_dtype().c_str(), info->vocab_size(), info->backend().c_str());
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

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout is reported by fwrite, not by a signal
  std::vector<std::string> normalized = octet::client::NormalizeFlagNames(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(normalized_argv.size()), normalized_argv.data());
  if (positional.size() < 2) return UsageError("missing command");
  const std::string command = positional[1];
  const std::vector<std::string> args(positional.begin() + 2, positional.end());
  if (command == "generate") return Generate(args);
  if (command == "model-info") return ModelInfo(args);
  if (command == "tokenize") return Tokenize(args);
  return UsageError("unknown command '" + command + "'");
}
