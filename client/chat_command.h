// `octet chat`: an interactive conversation through the router's Chat call. Each line read is the user's turn; the
// assistant's reply streams to `out` and joins the conversation, which every later turn sends whole (the router
// writes it in the model's chat template). "/reset" starts over (keeping the system message), "/exit" or end of
// input ends the chat.
#pragma once

#include <cstdio>
#include <istream>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "client/client.h"

namespace octet::client {

struct ChatOptions {
  std::string system;           // the system message; empty = none
  v1::SamplingParams sampling;  // for every turn (the turn end is added by the router)
  bool prompts = false;         // write "> " before each turn to `err` (an interactive terminal)
  CallOptions call;
};

// Runs the conversation until "/exit" or the end of `in`. Returns the first failed call's status (the chat ends
// there; what was said so far was written to `out`).
absl::Status RunChat(Client& client, const ChatOptions& options, std::istream& in, std::FILE* out, std::FILE* err);

}  // namespace octet::client
