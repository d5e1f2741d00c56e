// Puts a model's routed experts and Engram tables where the planner says, for the forward
// pass: which experts are fixed in DRAM and which stream from NVMe through a DRAM cache, which
// Engram tables stay mapped and which are paged through the Engram row cache, with both
// caches carved out of the DRAM budget before planning (so placed items + caches stay within
// the budget).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "memory-tier/hardware_profile.h"
#include "memory-tier/planner.h"
#include "runtime/model/plan_items.h"
#include "runtime/model/model_files.h"

namespace strata {

struct ExpertPlan {
  std::map<std::pair<int, int>, Tier> tier;  // every (layer, routed expert)
  int count[3] = {0, 0, 0};                  // experts per tier
  uint64_t cache_bytes = 0;                  // DRAM cache for the NVMe-tier experts
  std::map<int, Tier> engram_tier;           // every Engram table, by layer
  std::map<std::string, Tier> tensor_tier;   // every other tensor (attention, shared experts, ...)
  uint64_t gpu_budget_bytes = 0;             // the GPU memory the plan may use
  uint64_t engram_cache_bytes = 0;           // DRAM cache for the NVMe-tier Engram tables
  HostMemoryOptions memory;                  // the profile's NUMA policy for the tier's buffers
  Placement placement;                       // the planner's answer (with the cache reserved)
  std::string summary;                       // for the user, a few lines
};

// The planner's answer with the DRAM caches reserved out of the budget first (see plan_experts
// for their default sizes; a cache is 0 when nothing it would serve is on NVMe). What `strata
// plan` prints and what `strata run --profile` loads come from this one function.
struct CachedPlacement {
  Placement placement;
  uint64_t cache_bytes = 0, engram_cache_bytes = 0;
};
CachedPlacement plan_with_caches(const PlanInput& in, const HardwareProfile& hw, PlanOptions po, uint64_t cache_bytes,
                                 uint64_t engram_cache_bytes);

// Plans `m` on `hw` with `po` (budgets, hotness, context). The cache for NVMe-tier experts is
// `cache_bytes` when non-zero, else the larger of 5% of the DRAM budget and two layers' worth of
// routed experts (2 × top-k × the largest expert); it is reserved out of the DRAM budget before
// the experts are placed. A model with Engram tables also reserves a cache for the tables the
// planner may put on NVMe: `engram_cache_bytes` when non-zero, else the larger of 1% of the
// DRAM budget and 256 KiB per table. A cache is dropped (0) when nothing is put on NVMe for it.
// gpu_executes: whether a GPU backend will run the GPU tier; when not, the profile's GPU
// budget is taken as 0 (the GPU tier re-planned onto DRAM and NVMe) and the summary says so.
// kv_bf16: the KV cache sized as --cache-type-k bf16 allocates it.
// Throws strata::Error with the planner's reason when the model cannot run, or when the
// reserves leave no DRAM.
ExpertPlan plan_experts(const ModelFiles& m, const HardwareProfile& hw, PlanOptions po, uint64_t cache_bytes,
                        uint64_t engram_cache_bytes = 0, bool gpu_executes = false, bool kv_bf16 = false);

// The experts of a placement file as `strata plan --json` writes it ("experts": [[layer,
// expert, "gpu"|"dram"|"nvme"], ...]). Throws strata::Error naming the file and the entry
// that is malformed or outside the model.
std::map<std::pair<int, int>, Tier> load_expert_placement(const std::filesystem::path& path, const ModelConfig& c);

// The Engram tables of a placement file ("tables": [[tensor, "gpu"|"dram"|"nvme"], ...], as
// `strata plan --json` writes every gathered table), by layer; other tables are skipped, and a
// file without "tables" gives none. Throws strata::Error naming the file and the entry that is
// malformed or names an Engram table the model does not have.
std::map<int, Tier> load_engram_placement(const std::filesystem::path& path, const ModelConfig& c);

// Everything a run takes from a placement file, read once: the experts and Engram tables as
// above, the other tensors ("tensors": [[tensor, tier], ...]; none without the key) and the
// GPU budget ("budget_gb": {"gpu": GB}; 0 without it). Throws strata::Error naming the file
// and the malformed entry.
struct PlacementFile {
  std::map<std::pair<int, int>, Tier> experts;
  std::map<int, Tier> tables;
  std::map<std::string, Tier> tensors;
  uint64_t gpu_budget_bytes = 0;
};
PlacementFile load_placement(const std::filesystem::path& path, const ModelConfig& c, std::string_view flag = {});

// "2G", "512M", "1.5GB", "3" (GB) -> GB, at most 1e6 (a petabyte); throws strata::Error naming `what`.
double parse_gb(const std::string& text, const std::string& what);

}  // namespace strata
