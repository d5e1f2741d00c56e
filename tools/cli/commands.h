// Each `strata` subcommand registers itself on the app; main() dispatches.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_make_tiny(CLI::App& app);
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_plan(CLI::App& app);
void register_bench(CLI::App& app);

// profiles/ of the source tree, or $STRATA_PROFILES.
std::filesystem::path profiles_dir();

// "1,2,3" -> ids; throws strata::Error naming the first item that is not a token id.
std::vector<int32_t> parse_ids(const std::string& text);

}  // namespace strata::cli
