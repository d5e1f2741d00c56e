// llama.cpp's multi-letter single-dash flags (-ngl, -np, ...), which CLI11 would read as a
// one-letter flag and its value (-ngl 99 as -n gl), rewritten to their long names before
// parsing. Only whole arguments (and -flag=value) are rewritten.
#pragma once

#include <string>
#include <vector>

namespace strata::cli {

std::vector<std::string> expand_flag_aliases(int argc, char** argv);

}  // namespace strata::cli
