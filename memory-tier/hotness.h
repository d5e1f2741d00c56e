// Expert hotness: how often each (layer, routed expert) is activated per token, as measured
// by `strata profile` and consumed by the planner (hottest experts to the fastest tier).
// File format (JSON):
//   {"model": "...", "tokens": T,
//    "layers": [[layer, tokens through its router], ...],
//    "experts": [[layer, expert, probability per token], ...],   // what the planner reads
//    "counts": [[layer, expert, activations], ...],
//    "engram": [{"layer", "table_rows", "row_reads", "row_histogram": [64 bins]}, ...]}  // Engram models
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace strata {

struct Hotness {
  std::string model;
  int64_t tokens = 0;                        // tokens profiled
  std::vector<std::vector<int64_t>> counts;  // [layer][expert] activations (empty row: not MoE)
  std::vector<int64_t> layer_tokens;         // [layer] tokens routed in that layer

  double probability(size_t layer, size_t expert) const;
  // Smallest share of (layer, expert) pairs that takes `share` of all activations.
  double concentration(double share) const;
};

nlohmann::json hotness_json(const Hotness& h);
// Layers (x) by experts (y), each cell shaded by its activation probability.
std::string hotness_svg(const Hotness& h);
// (layer, expert) -> probability from a hotness file; throws strata::Error naming the file
// (after `flag`, the option that gave it, when not empty) and what is wrong (not JSON, 'experts' missing, an entry not [layer, expert, p in [0, 1]]).
std::map<std::pair<int, int>, double> load_hotness(const std::filesystem::path& path, std::string_view flag = {});
// The same from parsed JSON; `source` names it in errors.
std::map<std::pair<int, int>, double> parse_hotness(const nlohmann::json& j, const std::string& source);

}  // namespace strata
