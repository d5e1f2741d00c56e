// Each `strata` subcommand registers itself on the app; main() dispatches.
#pragma once

#include <CLI/CLI.hpp>

namespace strata::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_make_tiny(CLI::App& app);

}  // namespace strata::cli
