#include "runtime/model/expert_placement.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/common/json_file.h"
#include "runtime/common/units.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/plan_items.h"

namespace strata {

namespace {

std::string percent(double share) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * share);
  return b;
}

const std::string kEngramTable = ".engram.multi_head_embedding.embedding.weight";

// The layer of an Engram table tensor ("layers.N.engram.multi_head_embedding.embedding.weight"),
// else -1.
int engram_table_layer(const std::string& name) {
  if (name.rfind("layers.", 0) != 0 || name.size() <= kEngramTable.size() ||
      name.compare(name.size() - kEngramTable.size(), kEngramTable.size(), kEngramTable) != 0)
    return -1;
  const std::string n = name.substr(7, name.size() - 7 - kEngramTable.size());
  if (n.empty() || n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoi(n);
}

std::optional<Tier> tier_from_name(const std::string& t) {
  if (t == "gpu") return Tier::Gpu;
  if (t == "dram") return Tier::Dram;
  if (t == "nvme") return Tier::Nvme;
  return std::nullopt;
}

}  // namespace

CachedPlacement plan_with_caches(const PlanInput& in, const HardwareProfile& hw, PlanOptions po,
                                 uint64_t cache_bytes, uint64_t engram_cache_bytes) {
  uint64_t largest = 0, tables = 0;
  for (const PlanItem& it : in.items) {
    if (it.expert >= 0) largest = std::max(largest, it.bytes);
    if (it.gathered && engram_table_layer(it.name) >= 0) ++tables;
  }
  const double usable_gb = usable_dram_gb(hw, po);
  CachedPlacement r;
  r.cache_bytes = cache_bytes ? cache_bytes
                              : std::max<uint64_t>(static_cast<uint64_t>(0.05 * usable_gb * 1e9),
                                                   2 * static_cast<uint64_t>(in.top_k) * largest);
  if (tables > 0)
    r.engram_cache_bytes = engram_cache_bytes ? engram_cache_bytes
                                              : std::max<uint64_t>(static_cast<uint64_t>(0.01 * usable_gb * 1e9),
                                                                   tables * (uint64_t{256} << 10));
  const double reserve_gb = static_cast<double>(r.cache_bytes + r.engram_cache_bytes) / 1e9;
  if (reserve_gb >= usable_gb) {
    throw Error("a DRAM budget of " + describe_budget(usable_gb, po.dram_budget_gb, hw.dram_gb, hw.dram_headroom_gb) +
                " leaves nothing beside an expert cache of " + human_bytes(r.cache_bytes) +
                (r.engram_cache_bytes ? " and an Engram cache of " + human_bytes(r.engram_cache_bytes) : ""));
  }
  po.reserved_dram_gb = reserve_gb;
  po.nvme_cache_bytes = r.cache_bytes;
  try {
    r.placement = plan_placement(in, hw, po);
  } catch (const std::runtime_error& e) {
    throw Error(e.what());
  }
  int nvme_experts = 0, nvme_tables = 0;
  for (size_t i = 0; i < in.items.size(); ++i) {
    nvme_experts += in.items[i].expert >= 0 && r.placement.tier[i] == Tier::Nvme;
    nvme_tables += in.items[i].gathered && engram_table_layer(in.items[i].name) >= 0 && r.placement.tier[i] == Tier::Nvme;
  }
  if (nvme_experts == 0) r.cache_bytes = 0;
  if (nvme_tables == 0) r.engram_cache_bytes = 0;
  return r;
}

ExpertPlan plan_experts(const ModelFiles& m, const HardwareProfile& hw, PlanOptions po, uint64_t cache_bytes,
                        uint64_t engram_cache_bytes, bool gpu_executes, bool kv_bf16) {
  PlanInput in = plan_input_from_model(m);
  if (kv_bf16) kv_layout(m.config, in, true);
  std::string replanned;
  if (hw.has_gpu() && !gpu_executes) {
    po.vram_budget_gb = 0;
    replanned = "\nnote: the profile's GPU is not used (--gpu none): its tier was re-planned onto DRAM and NVMe "
                "(strata plan shows the GPU placement; --gpu sim runs it on a simulated device)";
  }
  ExpertPlan r;
  CachedPlacement cp = plan_with_caches(in, hw, po, cache_bytes, engram_cache_bytes);
  r.placement = std::move(cp.placement);
  r.cache_bytes = cp.cache_bytes;
  r.engram_cache_bytes = cp.engram_cache_bytes;
  for (size_t i = 0; i < in.items.size(); ++i) {
    if (in.items[i].expert < 0) continue;
    const Tier t = r.placement.tier[i];
    r.tier[{in.items[i].layer, in.items[i].expert}] = t;
    ++r.count[static_cast<int>(t)];
  }
  for (size_t i = 0; i < in.items.size(); ++i)
    if (in.items[i].expert < 0 && !in.items[i].gathered) r.tensor_tier[in.items[i].name] = r.placement.tier[i];
  r.gpu_budget_bytes = static_cast<uint64_t>(std::max(0.0, r.placement.budget_gb[0]) * 1e9);
  int paged = 0;
  for (size_t i = 0; i < in.items.size(); ++i) {
    const int layer = in.items[i].gathered ? engram_table_layer(in.items[i].name) : -1;
    if (layer < 0) continue;
    r.engram_tier[layer] = r.placement.tier[i];
    paged += r.placement.tier[i] == Tier::Nvme && StoredEngramTable::pageable(m.index.at(in.items[i].name));
  }
  if (paged == 0) r.engram_cache_bytes = 0;
  char line[512];
  std::snprintf(line, sizeof line,
                "placement on %s: routed experts %d gpu / %d dram / %d nvme; expert cache %s%s; predicted decode "
                "%.2f tokens/s, bound by %s",
                hw.name.c_str(), r.count[0], r.count[1], r.count[2],
                r.cache_bytes ? human_bytes(r.cache_bytes).c_str() : "none (nothing on NVMe)",
                r.cache_bytes ? (" (predicted hit rate " + percent(r.placement.nvme_cache_hit_rate) + ")").c_str() : "",
                r.placement.tokens_per_s, r.placement.bound.c_str());
  r.summary = line;
  if (po.gpu_workspace_bytes > 0 && r.placement.gpu_workspace_bytes == 0 && r.placement.budget_gb[0] > 0)
    r.summary += "\nnote: the GPU budget cannot hold the step workspace (" + human_bytes(po.gpu_workspace_bytes) +
                 " for steps of " + std::to_string(r.placement.step_tokens) +
                 " tokens, --ubatch): nothing placed on the GPU; prefill offload uses it where a copy fits";
  if (r.placement.gpu_workspace_bytes > 0)
    r.summary += "\nGPU step workspace " + human_bytes(r.placement.gpu_workspace_bytes) + " set aside (steps of " +
                 std::to_string(r.placement.step_tokens) + " tokens at a context of " +
                 std::to_string(r.placement.context) + ", --ubatch)";
  if (!r.engram_tier.empty()) {
    r.summary += "\nplacement of Engram tables:";
    for (const auto& [layer, t] : r.engram_tier)
      r.summary += " layer " + std::to_string(layer) + " " + std::string(tier_name(t)) + ",";
    r.summary += paged ? " Engram cache " + human_bytes(r.engram_cache_bytes) + " for the " + std::to_string(paged) +
                             " on NVMe"
                       : " Engram cache none (nothing on NVMe)";
  }
  r.memory = host_memory_options(hw);
  const int nodes = numa_node_count();
  r.summary += "\nhost memory: NUMA policy " + describe_numa(r.memory) + " on " + std::to_string(nodes) + " node" +
               (nodes > 1 ? "s" : "") +
               (r.memory.numa != NumaPolicy::Default && nodes == 1 ? " (nothing to spread: left to the kernel)" : "");
  r.summary += replanned;
  return r;
}

namespace {

// A placement `strata plan --json` wrote records the shape of its model ("layers",
// "routed_experts"); one made for another model is refused by what differs, before its entries
// could be read as this model's (a smaller model's experts all fit a larger one).
void check_model_shape(const nlohmann::json& j, const std::string& p, const ModelConfig& c) {
  std::string differs;
  for (const auto& [key, have] : {std::pair<const char*, int64_t>{"layers", c.num_hidden_layers},
                                  std::pair<const char*, int64_t>{"routed_experts", c.n_routed_experts}}) {
    if (!j.contains(key)) continue;
    const nlohmann::json& v = j[key];
    if (!v.is_number_integer())
      throw Error(p + ": key '" + key + "' is " + v.dump() + ", not a count (strata plan --json writes it)");
    if (v.get<int64_t>() != have)
      differs += std::string(differs.empty() ? "" : ", ") + key + " " + std::to_string(v.get<int64_t>()) +
                 " where this model has " + std::to_string(have);
  }
  if (differs.empty()) return;
  const std::string model =
      j.contains("model") && j["model"].is_string() ? " (model '" + j["model"].get<std::string>() + "')" : "";
  throw Error(p + ": a placement made for another model" + model + ": " + differs +
              (c.source.empty() ? "" : " (" + c.source + ")") + "; plan this model with strata plan --json");
}

// The [layer, expert, tier] entries of j["experts"].
std::map<std::pair<int, int>, Tier> experts_of(const nlohmann::json& j, const std::string& p, const ModelConfig& c) {
  if (!j.is_object() || !j.contains("experts") || !j["experts"].is_array())
    throw Error(p + ": key 'experts' missing or not an array of [layer, expert, tier] (strata plan --json)");
  check_model_shape(j, p, c);
  std::map<std::pair<int, int>, Tier> out;
  for (const auto& e : j["experts"]) {
    const bool shape = e.is_array() && e.size() == 3 && e[0].is_number_integer() && e[1].is_number_integer() &&
                       e[2].is_string();
    const int64_t layer = shape ? e[0].get<int64_t>() : -1, expert = shape ? e[1].get<int64_t>() : -1;
    const std::string t = shape ? e[2].get<std::string>() : "";
    if (!shape || layer < 0 || layer >= c.num_hidden_layers || !c.is_moe_layer(layer) || expert < 0 ||
        expert >= c.n_routed_experts || (t != "gpu" && t != "dram" && t != "nvme"))
      throw Error(p + ": 'experts' entry " + e.dump() + " is not [MoE layer, expert, \"gpu\"|\"dram\"|\"nvme\"] of this model");
    if (!out.emplace(std::pair{static_cast<int>(layer), static_cast<int>(expert)}, *tier_from_name(t)).second)
      throw Error(p + ": 'experts' names layer " + std::to_string(layer) + " expert " + std::to_string(expert) +
                  " twice (" + e.dump() + "): which tier is meant?");
  }
  return out;
}

// The [tensor, tier] entries of j[key] (none without the key), in file order.
std::vector<std::pair<std::string, Tier>> named_tiers(const nlohmann::json& j, const std::string& p, const char* key) {
  std::vector<std::pair<std::string, Tier>> out;
  if (!j.is_object() || !j.contains(key)) return out;
  if (!j[key].is_array())
    throw Error(p + ": key '" + key + "' is not an array of [tensor, tier] (strata plan --json)");
  for (const auto& e : j[key]) {
    const bool shape = e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string();
    const std::optional<Tier> t = shape ? tier_from_name(e[1].get<std::string>()) : std::nullopt;
    if (!t) throw Error(p + ": '" + key + "' entry " + e.dump() + " is not [tensor, \"gpu\"|\"dram\"|\"nvme\"]");
    out.emplace_back(e[0].get<std::string>(), *t);
  }
  return out;
}

// The Engram tables among j["tables"], by layer (the token embedding is always mapped).
std::map<int, Tier> engram_tables_of(const nlohmann::json& j, const std::string& p, const ModelConfig& c) {
  std::map<int, Tier> out;
  for (const auto& [name, t] : named_tiers(j, p, "tables")) {
    if (name.find(".engram.") == std::string::npos) continue;
    const int layer = engram_table_layer(name);
    if (layer < 0 || layer >= c.num_hidden_layers || !c.is_engram_layer(layer))
      throw Error(p + ": 'tables' entry " + nlohmann::json::array({name, std::string(tier_name(t))}).dump() +
                  " names no Engram table of this model");
    out[layer] = t;
  }
  return out;
}

}  // namespace

std::map<std::pair<int, int>, Tier> load_expert_placement(const std::filesystem::path& path, const ModelConfig& c) {
  return experts_of(read_json_file(path), path.string(), c);
}

std::map<int, Tier> load_engram_placement(const std::filesystem::path& path, const ModelConfig& c) {
  return engram_tables_of(read_json_file(path), path.string(), c);
}

PlacementFile load_placement(const std::filesystem::path& path, const ModelConfig& c, std::string_view flag) {
  const std::string p = input_name(path, flag);
  const nlohmann::json j = read_json_file(path, flag);
  PlacementFile f;
  f.experts = experts_of(j, p, c);
  f.tables = engram_tables_of(j, p, c);
  for (auto& [name, t] : named_tiers(j, p, "tensors")) f.tensors[std::move(name)] = t;
  if (j.contains("budget_gb") && j["budget_gb"].is_object() && j["budget_gb"].contains("gpu")) {
    const nlohmann::json& g = j["budget_gb"]["gpu"];
    if (!(g.is_number() && g.get<double>() >= 0 && g.get<double>() <= 1e6))
      throw Error(p + ": 'budget_gb.gpu' is not a number of GB in [0, 1e6]");
    f.gpu_budget_bytes = static_cast<uint64_t>(g.get<double>() * 1e9);
  }
  return f;
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
  // Bytes computed from it must fit in 64 bits (1e300 GB would turn into 0 bytes).
  if (v * scale > 1e6) throw Error(what + ": '" + text + "' is more than a petabyte (1e6 GB)");
  return v * scale;
}

}  // namespace strata
