#include "client/chat_command.h"

#include <utility>

#include "absl/strings/ascii.h"

namespace octet::client {
namespace {

v1::ChatMessage Message(std::string role, std::string content) {
  v1::ChatMessage m;
  m.set_role(std::move(role));
  m.set_content(std::move(content));
  return m;
}

}  // namespace

absl::Status RunChat(Client& client, const ChatOptions& options, std::istream& in, std::FILE* out, std::FILE* err) {
  v1::ChatRequest request;
  *request.mutable_sampling() = options.sampling;
  // The end of a turn as one token, when the tokenizer has it: the worker leaves special tokens out of the text, so
  // the router's stop string alone would never see it.
  if (absl::StatusOr<std::vector<int32_t>> ids = client.Tokenize("<|im_end|>", false, options.call);
      ids.ok() && ids->size() == 1) {
    request.mutable_sampling()->add_stop_token_ids((*ids)[0]);
  }
  const auto reset = [&] {
    request.clear_messages();
    if (!options.system.empty()) *request.add_messages() = Message("system", options.system);
  };
  reset();
  std::string line;
  while (true) {
    if (options.prompts) {
      std::fputs("> ", err);
      std::fflush(err);
    }
    if (!std::getline(in, line)) break;
    const std::string turn(absl::StripAsciiWhitespace(line));
    if (turn.empty()) continue;
    if (turn == "/exit") break;
    if (turn == "/reset") {
      reset();
      continue;
    }
    *request.add_messages() = Message("user", turn);
    std::string reply;
    const absl::Status status = client.Chat(
        request,
        [&](const v1::GenerateResponse& chunk) {
          reply += chunk.text();
          std::fwrite(chunk.text().data(), 1, chunk.text().size(), out);
          std::fflush(out);
          return true;
        },
        options.call);
    std::fputc('\n', out);
    std::fflush(out);
    if (!status.ok()) return status;
    *request.add_messages() = Message("assistant", std::string(absl::StripAsciiWhitespace(reply)));
  }
  return absl::OkStatus();
}

}  // namespace octet::client
