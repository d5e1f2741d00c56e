// Flags shared by the commands that run a model.
#include <cstdio>

#include "tools/cli/commands.h"

namespace strata::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_flag("!--no-act-quant", o.act_quant,
                "Skip DeepSeek-V4's activation quantize-dequantize steps (FP8 KV, FP4 indexer): an experiment, "
                "not the published math");
  cmd->add_option("--experts-per-token", o.experts_per_token,
                  "Routed experts per token (default: num_experts_per_tok of the config)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-expert-weight", o.min_expert_weight,
                  "Skip a routed expert whose share of the token's routed weight is below this (0: off)")
      ->check(CLI::Range(0.0, 0.999));
}

void print_load_notes(const CausalLM& lm) {
  for (const std::string& n : lm.load_notes()) std::fprintf(stderr, "note: %s\n", n.c_str());
}

void print_routing(const CausalLM& lm, const ModelOptions& o) {
  if (o.min_expert_weight <= 0) return;
  const RoutingStats s = lm.routing_stats();
  std::fprintf(stderr, "experts: %lld of %lld routed slots skipped (%.1f%%) below weight share %.3f\n",
               static_cast<long long>(s.skipped), static_cast<long long>(s.routed),
               s.routed > 0 ? 100.0 * static_cast<double>(s.skipped) / static_cast<double>(s.routed) : 0.0,
               static_cast<double>(o.min_expert_weight));
}

}  // namespace strata::cli
