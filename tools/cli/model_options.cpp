// Flags shared by the commands that run a model.
#include <algorithm>
#include <cstdio>

#include "runtime/common/units.h"
#include "runtime/model/expert_source.h"
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
  cmd->add_option_function<double>(
         "--expert-cache-mb",
         [&o](double mb) { o.expert_cache_bytes = static_cast<uint64_t>(mb * 1024 * 1024); },
         "Read routed experts through a DRAM cache of this many MiB, filled with io_uring + O_DIRECT "
         "(default: read in place from the memory map)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--expert-io-pread", o.expert_io_pread, "The expert cache reads with a pread pool, not io_uring");
}

void print_load_notes(const CausalLM& lm) {
  for (const std::string& n : lm.load_notes()) std::fprintf(stderr, "note: %s\n", n.c_str());
  if (lm.experts().store_stats()) std::fprintf(stderr, "experts: %s\n", lm.experts().describe().c_str());
}

void print_routing(const CausalLM& lm, const ModelOptions& o) {
  if (const auto st = lm.experts().store_stats()) {
    const uint64_t acquired = st->hits + st->late + st->misses;
    std::fprintf(stderr,
                 "expert cache: %llu uses: %llu hits, %llu prefetched in flight, %llu misses (%.1f%% hit); "
                 "%llu prefetches, %llu evictions, %s read, %.3f s stalled, peak %s\n",
                 static_cast<unsigned long long>(acquired), static_cast<unsigned long long>(st->hits),
                 static_cast<unsigned long long>(st->late), static_cast<unsigned long long>(st->misses),
                 acquired ? 100.0 * static_cast<double>(st->hits) / static_cast<double>(acquired) : 0.0,
                 static_cast<unsigned long long>(st->prefetched), static_cast<unsigned long long>(st->evictions),
                 human_bytes(st->bytes_read).c_str(), st->stall_seconds, human_bytes(st->peak_bytes).c_str());
  }
  if (const auto& p = lm.experts().prediction_stats(); p.guessed > 0)
    std::fprintf(stderr, "next-layer prediction: precision %.1f%%, recall %.1f%% (%lld of %lld guessed experts used)\n",
                 100.0 * static_cast<double>(p.correct) / static_cast<double>(p.guessed),
                 100.0 * static_cast<double>(p.correct) / static_cast<double>(std::max<int64_t>(p.used, 1)),
                 static_cast<long long>(p.correct), static_cast<long long>(p.guessed));
  if (o.min_expert_weight <= 0) return;
  const RoutingStats s = lm.routing_stats();
  std::fprintf(stderr, "experts: %lld of %lld routed slots skipped (%.1f%%) below weight share %.3f\n",
               static_cast<long long>(s.skipped), static_cast<long long>(s.routed),
               s.routed > 0 ? 100.0 * static_cast<double>(s.skipped) / static_cast<double>(s.routed) : 0.0,
               static_cast<double>(o.min_expert_weight));
}

}  // namespace strata::cli
