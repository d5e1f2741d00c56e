// The placement planner: which tier holds every piece of a model, and what decode speed that
// placement implies on a given box. Knows byte sizes, access frequencies and bandwidths —
// not model math (runtime/model/plan_items.h turns a model into PlanInput).
//
// Placement (greedy, in order):
//   1. KV cache for `context` tokens: GPU when there is one, else DRAM.
//   2. Per-token tensors (attention, norms, dense FFN, shared experts, routers, indexer,
//      hyper-connections, head): GPU, then DRAM, then NVMe; those the CPU computes wherever
//      they are (PlanItem::host_only) DRAM first. Tables read a few rows per token (embedding,
//      Engram) go to DRAM, then NVMe.
//   3. Routed experts, hottest first (hotness = probability of activation per token; top_k /
//      n_experts each without a hotness file): GPU, then DRAM, then NVMe.
// Cost model (decode, batch 1, FlexGen-style): per layer, bytes read from each resource —
// GPU memory, DRAM (CPU compute), NVMe (streamed into DRAM, then read by the CPU), PCIe — each
// divided by its bandwidth; a layer takes the slowest of its overlapped resources; a token
// takes the sum over layers. Experts contribute bytes × activation probability; gathered
// tables the rows a token reads (on NVMe, whole pages around them). With a DRAM
// cache for NVMe-tier experts (PlanOptions::nvme_cache_bytes), the cache is taken to hold the
// hottest NVMe-tier experts that fit (the store's frequency eviction in steady state): their
// reads count as DRAM reads, the rest as NVMe reads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory-tier/hardware_profile.h"

namespace strata {

enum class Tier { Gpu, Dram, Nvme };
std::string_view tier_name(Tier t);  // "gpu" | "dram" | "nvme"

struct PlanItem {
  std::string name;  // a tensor, or "layers.N.ffn.experts.E" for all of one expert's tensors
  std::string cls;   // "attention", "routed_expert", "embedding", ...
  int layer = -1;    // -1: outside the layers (embedding, head, final norm)
  int expert = -1;   // routed experts only
  uint64_t bytes = 0;
  // Fraction of the item's bytes read per decoded token: 1 for per-token tensors, the
  // activation probability for experts, rows/total for gathered tables.
  double reads_per_token = 1;
  bool gathered = false;  // a table read a few rows per token (embedding, Engram): DRAM first
  // Bytes read from NVMe per byte used while the item is there: rows gathered at random are
  // read in whole pages (an Engram table: 64 KiB pages of whole rows), so page / row.
  double nvme_read_factor = 1;
  // Computed by the CPU wherever it is placed (a norm, the router, the mHC mixing): never
  // planned on the GPU, whose bytes it would take without being read there.
  bool host_only = false;
  // Runs with its layer's attention (the layer's attention norm, V4's mHC mixing around it): on
  // the GPU only where the attention and its KV cache are.
  bool with_attention = false;
};

// One part of the KV cache the runtime allocates: `bytes` per `per` tokens of the context
// (floor(context / per) rows of it; at least one with at_least_one).
struct KvTerm {
  int64_t per = 1;
  uint64_t bytes = 0;
  bool at_least_one = false;
};

struct PlanInput {
  std::string model;  // for the report
  std::vector<PlanItem> items;
  int n_layers = 0, n_experts = 0, top_k = 0;
  uint64_t kv_bytes_per_token = 0;  // the growth rate (for the longest context that fits)
  // What the runtime allocates for a context: kv_fixed_bytes + the terms; with no terms,
  // kv_bytes_per_token per token.
  uint64_t kv_fixed_bytes = 0;
  std::vector<KvTerm> kv_terms;
  int64_t max_context = 0;  // the model's own limit
};

// Bytes of KV cache the runtime allocates for `context` tokens.
uint64_t kv_bytes_at(const PlanInput& in, int64_t context);

struct PlanOptions {
  // Budgets used as given, replacing the profile's: its headroom is taken only from its own
  // budgets (an explicit --dram-budget 2G means 2 GB for the model).
  std::optional<double> vram_budget_gb, dram_budget_gb;
  int64_t context = 4096;                                 // KV cache reserved for this many tokens
  // (layer, expert) -> activation probability per token; missing pairs keep the uniform value.
  std::map<std::pair<int, int>, double> hotness;
  // DRAM cache through which NVMe-tier routed experts stream. Not placed by the planner: the
  // caller sets it aside in reserved_dram_gb (runtime/model/expert_placement.h).
  uint64_t nvme_cache_bytes = 0;
  // DRAM set aside out of the budget before anything is placed (the expert and Engram caches).
  double reserved_dram_gb = 0;
  // llama.cpp's placement flags in the planner's terms. gpu_layers (-ngl N): only the last N
  // layers' tensors may go on the GPU (their per-token tensors and routed experts), the
  // tensors outside the layers (head, final norm) only when N exceeds the layer count, and
  // with N = 0 nothing, the KV cache included (which otherwise stays one cache, on the GPU when
  // it fits). cpu_moe_layers (--n-cpu-moe N; --cpu-moe: all): the routed experts of the first N
  // layers stay off the GPU. Within what they allow, the order above stands.
  std::optional<int> gpu_layers;
  int cpu_moe_layers = 0;
  // The device's step workspace (runtime/model/device_workspace.h: steps of step_tokens
  // tokens at the full context), set aside on the GPU before anything is placed there, as the
  // runtime reserves it at load. step_tokens only names it in the report.
  uint64_t gpu_workspace_bytes = 0;
  int64_t step_tokens = 0;
  // The same workspace at another context (for the longest context that fits); may be empty.
  std::function<uint64_t(int64_t context)> gpu_workspace_at;
};
// Whether the flags above let item `it` of a model of n_layers on the GPU.
bool gpu_allowed(const PlanItem& it, int n_layers, const PlanOptions& opts);

struct ResourceTime {
  double gpu_s = 0, dram_s = 0, nvme_s = 0, pcie_s = 0;
};

// The budgets a plan uses: the explicit one as given, else the profile's less its headroom.
double usable_vram_gb(const HardwareProfile& hw, const PlanOptions& opts);
double usable_dram_gb(const HardwareProfile& hw, const PlanOptions& opts);
// "24.0 GB (the profile's 25.5 GB less 1.5 GB headroom)" or "2.0 GB (as given)".
std::string describe_budget(double usable_gb, const std::optional<double>& given, double profile_gb, double headroom_gb);

struct Placement {
  std::vector<Tier> tier;  // parallel to PlanInput::items
  double budget_gb[3] = {0, 0, 0};
  std::string budgets;  // "GPU 22.5 GB (the profile's 24.0 GB less 1.5 GB headroom), DRAM 2.0 GB (as given)"
  uint64_t bytes[3] = {0, 0, 0};                                // weights per tier
  std::map<std::string, std::array<uint64_t, 3>> bytes_by_class;  // class -> per tier
  Tier kv_tier = Tier::Dram;
  uint64_t kv_bytes = 0;
  uint64_t gpu_workspace_bytes = 0;  // set aside on the GPU (0 with nothing there)
  int64_t step_tokens = 0;
  bool vram_budget_given = false;  // --vram-budget: the profile's headroom was not taken
  int64_t context = 0, longest_context = 0;
  // The cache of NVMe-tier experts: its size, the experts it is predicted to hold, and the
  // share of the NVMe-tier experts' bytes read per token it serves (0 with nothing on NVMe).
  uint64_t nvme_cache_bytes = 0;
  int nvme_experts = 0, nvme_cached_experts = 0;
  double nvme_cache_hit_rate = 0;
  double read_bytes_per_token[3] = {0, 0, 0};
  ResourceTime time_per_token;  // summed over layers of each resource
  double seconds_per_token = 0, tokens_per_s = 0;
  std::string bound;  // the resource that bounds most of the token time
  std::vector<std::string> notes;
};

// Throws std::runtime_error with the reason when the model cannot run at all (the
// per-token tensors and the KV cache exceed GPU + DRAM).
Placement plan_placement(const PlanInput& in, const HardwareProfile& hw, const PlanOptions& opts = {});

nlohmann::json placement_json(const PlanInput& in, const Placement& p);
std::string placement_text(const PlanInput& in, const HardwareProfile& hw, const Placement& p);
// Layers × experts, each cell coloured by tier; a column per layer for its per-token tensors.
std::string placement_svg(const PlanInput& in, const Placement& p);

}  // namespace strata
