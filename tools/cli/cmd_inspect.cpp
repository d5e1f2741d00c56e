// strata inspect MODEL [--json]   (or -m / --model MODEL, as the other commands take it)
#include <iostream>

#include "runtime/model/summary.h"
#include "tools/cli/commands.h"

namespace strata::cli {

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Architecture, parameters and bytes by class and weight type of a model");
  static std::string model;
  static bool json = false;
  cmd->add_option("model,-m,--model", model, "HF model directory or .gguf file (first part of a split GGUF)")->required();
  cmd->add_flag("--json", json, "Print the summary as JSON");
  cmd->callback([] {
    const ModelFiles m = open_model(model);
    const ModelSummary s = summarize(m);
    if (json) {
      std::cout << summary_json(s).dump(2) << "\n";
    } else {
      std::cout << summary_text(m, s);
      for (const auto& w : m.index.warnings()) std::cout << "warning: " << w << "\n";
    }
  });
}

}  // namespace strata::cli
