// Puts a model's routed experts where the planner says, for the forward pass: which experts
// are fixed in DRAM and which stream from NVMe through a DRAM cache, with the cache carved out
// of the DRAM budget before planning (so placed experts + cache stay within the budget).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include "memory-tier/hardware_profile.h"
#include "memory-tier/planner.h"
#include "runtime/model/model_files.h"

namespace strata {

struct ExpertPlan {
  std::map<std::pair<int, int>, Tier> tier;  // every (layer, routed expert)
  int count[3] = {0, 0, 0};                  // experts per tier
  uint64_t cache_bytes = 0;                  // DRAM cache for the NVMe-tier experts
  HostMemoryOptions memory;                  // the profile's NUMA policy for the tier's buffers
  Placement placement;                       // the planner's answer (with the cache reserved)
  std::string summary;                       // for the user, a few lines
};

// Plans `m` on `hw` with `po` (budgets, hotness, context). The cache for NVMe-tier experts is
// `cache_bytes` when non-zero, else the larger of 5% of the DRAM budget and two layers' worth of
// routed experts (2 × top-k × the largest expert); it is reserved out of the DRAM budget before
// the experts are placed. Throws strata::Error with the planner's reason when the model cannot
// run, or when the reserve leaves no DRAM.
ExpertPlan plan_experts(const ModelFiles& m, const HardwareProfile& hw, PlanOptions po, uint64_t cache_bytes);

// The experts of a placement file as `strata plan --json` writes it ("experts": [[layer,
// expert, "gpu"|"dram"|"nvme"], ...]). Throws strata::Error naming the file and the entry
// that is malformed or outside the model.
std::map<std::pair<int, int>, Tier> load_expert_placement(const std::filesystem::path& path, const ModelConfig& c);

// "2G", "512M", "1.5GB", "3" (GB) -> GB; throws strata::Error naming `what`.
double parse_gb(const std::string& text, const std::string& what);

}  // namespace strata
