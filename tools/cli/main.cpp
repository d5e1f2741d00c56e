// strata: run the largest DeepSeek-class MoE models on one GPU + DRAM + NVMe.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "runtime/common/files.h"
#include "tools/cli/commands.h"

std::filesystem::path strata::cli::profiles_dir() {
  if (const char* p = std::getenv("STRATA_PROFILES")) return p;
  return std::filesystem::path(STRATA_SOURCE_DIR) / "profiles";
}

int main(int argc, char** argv) {
  CLI::App app{"strata — tiered-memory runtime for DeepSeek-class Mixture-of-Experts models", "strata"};
  app.set_version_flag("--version", "strata 0.1.0");
  app.require_subcommand(1);
  strata::cli::register_inspect(app);
  strata::cli::register_tokenize(app);
  strata::cli::register_make_tiny(app);
  strata::cli::register_run(app);
  strata::cli::register_logits(app);
  strata::cli::register_profile(app);
  strata::cli::register_plan(app);
  strata::cli::register_tune(app);
  strata::cli::register_bench(app);
  strata::guard_command_files(true);  // no output replaces an input of the same command
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
