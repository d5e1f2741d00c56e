#include "tools/cli/flag_aliases.h"

#include <string_view>
#include <utility>

namespace strata::cli {

std::vector<std::string> expand_flag_aliases(int argc, char** argv) {
  static const std::pair<std::string_view, std::string_view> kAliases[] = {
      {"-ngl", "--n-gpu-layers"}, {"-np", "--parallel"},  {"-ot", "--override-tensor"},
      {"-fa", "--flash-attn"},    {"-cmoe", "--cpu-moe"}, {"-ncmoe", "--n-cpu-moe"},
      {"-ctk", "--cache-type-k"},
  };
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    for (const auto& [from, to] : kAliases) {
      if (a == from) {
        a = to;
        break;
      }
      if (a.size() > from.size() && a.compare(0, from.size(), from) == 0 && a[from.size()] == '=') {
        a = std::string(to) + a.substr(from.size());
        break;
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace strata::cli
