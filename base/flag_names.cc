#include "base/flag_names.h"

#include <algorithm>

#include "absl/flags/reflection.h"

namespace octet {

std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-') continue;
    const size_t name_begin = arg[1] == '-' ? 2 : 1;
    const size_t name_end = std::min(arg.find('='), arg.size());
    std::string name = arg.substr(name_begin, name_end - name_begin);
    if (name.find('-') == std::string::npos) continue;
    std::replace(name.begin(), name.end(), '-', '_');
    if (absl::FindCommandLineFlag(name) == nullptr) continue;
    arg.replace(name_begin, name_end - name_begin, name);
  }
  return args;
}

}  // namespace octet
