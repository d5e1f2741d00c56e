// Each `strata` subcommand registers itself on the app; main() dispatches.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/model/causal_lm.h"

namespace strata::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_make_tiny(CLI::App& app);
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_profile(CLI::App& app);
void register_plan(CLI::App& app);
void register_bench(CLI::App& app);

// profiles/ of the source tree, or $STRATA_PROFILES.
std::filesystem::path profiles_dir();

// Flags every command that runs a model shares (--no-act-quant, --experts-per-token,
// --min-expert-weight), into `o`.
void add_model_options(CLI::App* cmd, ModelOptions& o);
// Load-time notes of the model on stderr.
void print_load_notes(const CausalLM& lm);
// The share of routed expert slots skipped by --min-expert-weight, on stderr (when set).
void print_routing(const CausalLM& lm, const ModelOptions& o);

// "1,2,3" -> ids; throws strata::Error naming the first item that is not a token id.
std::vector<int32_t> parse_ids(const std::string& text);

}  // namespace strata::cli
