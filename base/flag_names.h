// Command-line flag spelling shared by octet's programs.
#pragma once

#include <string>
#include <vector>

namespace octet {

// Returns argv with "--max-tokens" spelled "--max_tokens" (abseil flag names cannot contain '-') wherever the
// underscore spelling names a registered flag, so both spellings work. Arguments after a bare "--", and
// anything that is not a registered flag, are left alone.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv);

}  // namespace octet
