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
    if (absl::FindCommandLineFlag(name) == nullptr) {
      // A negated boolean: --no-enable-x or --noenable-x is abseil's --noenable_x.
      const std::string negated = name.rfind("no_", 0) == 0  ? name.substr(3)
                                  : name.rfind("no", 0) == 0 ? name.substr(2)
                                                             : "";
      const absl::CommandLineFlag* flag = negated.empty() ? nullptr : absl::FindCommandLineFlag(negated);
      if (flag == nullptr || !flag->IsOfType<bool>() || name_end != arg.size()) continue;
      name = "no" + negated;
    }
    arg.replace(name_begin, name_end - name_begin, name);
  }
  return args;
}

}  // namespace octet
