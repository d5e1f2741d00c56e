#include "runtime/model/expert_placement.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "runtime/common/error.h"
#include "runtime/common/json_file.h"
#include "runtime/common/units.h"
#include "runtime/model/plan_items.h"

namespace strata {

namespace {

std::string percent(double share) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * share);
  return b;
}

}  // namespace

ExpertPlan plan_experts(const ModelFiles& m, const HardwareProfile& hw, PlanOptions po, uint64_t cache_bytes) {
  const PlanInput in = plan_input_from_model(m);
  uint64_t largest = 0;
  for (const PlanItem& it : in.items)
    if (it.expert >= 0) largest = std::max(largest, it.bytes);
  const double dram_gb = po.dram_budget_gb.value_or(hw.dram_gb);
  const double usable_gb = std::max(0.0, dram_gb - hw.dram_headroom_gb);
  ExpertPlan r;
  r.cache_bytes = cache_bytes ? cache_bytes
                              : std::max<uint64_t>(static_cast<uint64_t>(0.05 * usable_gb * 1e9),
                                                   2 * static_cast<uint64_t>(in.top_k) * largest);
  const double reserve_gb = static_cast<double>(r.cache_bytes) / 1e9;
  if (reserve_gb >= usable_gb)
    throw Error("a DRAM budget of " + std::to_string(dram_gb) + " GB (" + std::to_string(usable_gb) +
                " GB after the profile's headroom) leaves nothing beside an expert cache of " +
                human_bytes(r.cache_bytes));
  po.dram_budget_gb = dram_gb - reserve_gb;
  po.nvme_cache_bytes = r.cache_bytes;
  try {
    r.placement = plan_placement(in, hw, po);
  } catch (const std::runtime_error& e) {
    throw Error(e.what());
  }
  for (size_t i = 0; i < in.items.size(); ++i) {
    if (in.items[i].expert < 0) continue;
    const Tier t = r.placement.tier[i];
    r.tier[{in.items[i].layer, in.items[i].expert}] = t;
    ++r.count[static_cast<int>(t)];
  }
  if (r.count[static_cast<int>(Tier::Nvme)] == 0) r.cache_bytes = 0;
  char line[512];
  std::snprintf(line, sizeof line,
                "placement on %s: routed experts %d gpu / %d dram / %d nvme; expert cache %s%s; predicted decode "
                "%.2f tokens/s, bound by %s",
                hw.name.c_str(), r.count[0], r.count[1], r.count[2],
                r.cache_bytes ? human_bytes(r.cache_bytes).c_str() : "none (nothing on NVMe)",
                r.cache_bytes ? (" (predicted hit rate " + percent(r.placement.nvme_cache_hit_rate) + ")").c_str() : "",
                r.placement.tokens_per_s, r.placement.bound.c_str());
  r.summary = line;
  r.memory = host_memory_options(hw);
  const int nodes = numa_node_count();
  r.summary += "\nhost memory: NUMA policy " + describe_numa(r.memory) + " on " + std::to_string(nodes) + " node" +
               (nodes > 1 ? "s" : "") +
               (r.memory.numa != NumaPolicy::Default && nodes == 1 ? " (nothing to spread: left to the kernel)" : "");
  if (r.count[0] > 0)
    r.summary += "\nnote: experts placed on the GPU are held in DRAM and computed by the CPU (no GPU forward pass yet)";
  return r;
}

std::map<std::pair<int, int>, Tier> load_expert_placement(const std::filesystem::path& path, const ModelConfig& c) {
  const std::string p = path.string();
  const nlohmann::json j = read_json_file(path);
  if (!j.is_object() || !j.contains("experts") || !j["experts"].is_array())
    throw Error(p + ": key 'experts' missing or not an array of [layer, expert, tier] (strata plan --json)");
  std::map<std::pair<int, int>, Tier> out;
  for (const auto& e : j["experts"]) {
    const bool shape = e.is_array() && e.size() == 3 && e[0].is_number_integer() && e[1].is_number_integer() &&
                       e[2].is_string();
    const int64_t layer = shape ? e[0].get<int64_t>() : -1, expert = shape ? e[1].get<int64_t>() : -1;
    const std::string t = shape ? e[2].get<std::string>() : "";
    if (!shape || layer < 0 || layer >= c.num_hidden_layers || !c.is_moe_layer(layer) || expert < 0 ||
        expert >= c.n_routed_experts || (t != "gpu" && t != "dram" && t != "nvme"))
      throw Error(p + ": 'experts' entry " + e.dump() + " is not [MoE layer, expert, \"gpu\"|\"dram\"|\"nvme\"] of this model");
    out[{static_cast<int>(layer), static_cast<int>(expert)}] = t == "gpu" ? Tier::Gpu : t == "dram" ? Tier::Dram : Tier::Nvme;
  }
  return out;
}

double parse_gb(const std::string& text, const std::string& what) {
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double scale = -1;
  if (unit.empty() || unit == "G" || unit == "GB") scale = 1;
  else if (unit == "M" || unit == "MB") scale = 1e-3;
  else if (unit == "T" || unit == "TB") scale = 1e3;
  if (used == 0 || scale < 0 || !(v >= 0) || !std::isfinite(v))
    throw Error(what + ": '" + text + "' is not a size (e.g. 24G, 512M, or a number of GB)");
  return v * scale;
}

}  // namespace strata
