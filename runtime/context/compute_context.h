// What a run computes with, decided once from what the user asked for: the placement of every
// expert, Engram table and tensor (planned on a hardware profile or read from a saved plan),
// the caches it needs, the device that runs the GPU tier, and the compute threads. The
// commands (run, logits, chat, serve, profile, bench) only parse flags into a RunRequest and
// print what the context decided; anything embedding strata does the same without them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/kernel_choices.h"
#include "memory-tier/hardware_profile.h"
#include "runtime/backend/gpu_choice.h"
#include "runtime/model/causal_lm.h"

namespace strata {

struct RunRequest {
  ModelOptions opts;  // as given: caches, routing, context, checks (placement fields are filled in)
  // Plan on this hardware profile (a name in profiles_dir, or a .json path) ...
  std::string profile;
  std::filesystem::path profiles_dir;
  std::string dram_budget, vram_budget;  // e.g. "2G", "512M" (the profile's when empty)
  std::string hotness;                   // `strata profile` output for the planner
  // ... or run the plan `strata plan --json` saved here.
  std::string placement;
  std::string gpu = "auto";   // auto | none | sim | cuda:N
  bool sim_throttle = false;  // pace the simulated GPU to the profile's GPU memory and PCIe rates
  bool cuda_graphs = false;   // a CUDA device launches each layer's decode attention as a CUDA graph
  // llama.cpp's -ngl and --n-cpu-moe in the planner's terms (planner.h: PlanOptions).
  std::optional<int> gpu_layers;
  int cpu_moe_layers = 0;
  // Prefill offload threshold (ModelOptions::offload_batch) with a GPU device: -1 takes the
  // profile's gpu_offload_batch_threshold (0 without a profile).
  int64_t offload_batch = -1;
  // The product kernels' switches for this run (--exact-dot, --batch-invariant over the
  // environment's defaults); the context puts them in effect.
  KernelChoices kernels = KernelChoices::from_environment();
  ArenaOptions arena;         // compute threads (0: the profile's, else every hardware thread)
};

// The profile's measured crossovers (cpu.tiles_min_batch) over the choices `c` of this run
// (those it already sets win), made the kernel choices in effect; an unknown weight type name is
// an error naming the profile and the key.
void apply_tiles_min_batch(const HardwareProfile& hw, const std::string& profile, KernelChoices c);

class ComputeContext {
 public:
  // Plans (or reads the placement), makes the GPU device, configures the compute arenas.
  // Throws strata::Error naming the flag, file or budget that is wrong.
  ComputeContext(const ModelFiles& m, const RunRequest& r);

  // The model options with the placement, caches, host-memory policy and GPU filled in.
  const ModelOptions& model_options() const { return opts_; }
  // The device running the GPU tier (null: none).
  const std::shared_ptr<Device>& gpu() const { return opts_.gpu; }
  const std::optional<HardwareProfile>& profile() const { return hw_; }
  // What was decided that a user should hear: the plan's summary, re-planned tiers, placements
  // that cannot run where they say.
  const std::vector<std::string>& notes() const { return notes_; }
  // The plan's predicted decode rate (0 without a plan).
  double predicted_tokens_per_s() const { return predicted_; }
  // The compute arenas as configured (threads, pinning, NUMA nodes).
  const ArenaInfo& arena() const { return arena_; }
  // Whether the arenas were configured by the request or the profile (else the defaults).
  bool arena_configured() const { return arena_configured_; }

  // The model over m's weights with these options (m must outlive it).
  std::unique_ptr<CausalLM> load(const ModelFiles& m,
                                 std::function<void(size_t done, size_t total)> progress = {}) const;

 private:
  ModelOptions opts_;
  std::optional<HardwareProfile> hw_;
  std::vector<std::string> notes_;
  double predicted_ = 0;
  ArenaInfo arena_;
  bool arena_configured_ = false;
};

}  // namespace strata
