// HardwareProfile: what a box has and how fast it moves bytes. Loaded from profiles/*.json
// (JSON with // comments); every figure in GB (10^9 bytes) and GB/s.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "memory-tier/host_memory.h"

namespace strata {

struct GpuSpec {
  std::string name;
  double vram_gb = 0;
  double mem_bandwidth_gbps = 0;
  double bf16_tflops = 0;
  std::string sm;
};

struct HardwareProfile {
  std::string name, description, source;  // source: "specification" or "measured"
  std::vector<GpuSpec> gpus;
  double vram_gb = 0, vram_headroom_gb = 0, dram_gb = 0, dram_headroom_gb = 0;
  double dram_read_gbps = 0, pcie_h2d_gbps = 0, nvme_read_gbps = 0;
  int nvme_queue_depth = 0;
  std::string cpu_model, isa;
  int cores = 0, threads = 0, numa_nodes = 1;
  // cpu.numa_policy ("interleave" | "bind" | "local"; default interleave) and, with bind,
  // cpu.numa_node: where the tier's DRAM buffers (fixed experts, caches) are placed.
  NumaPolicy numa_policy = NumaPolicy::Interleave;
  int numa_node = 0;
  // cpu.numa_split: one compute arena per NUMA node, each routed expert computed by one node
  // and its memory bound there (cpu-kernels/compute_arena.h); default false.
  bool numa_split = false;
  // cpu.pin_threads: bind each compute thread to one hardware thread (as --pin-threads); default false.
  bool pin_threads = false;
  // cpu.tiles_min_batch: per weight type name ("q4_k"), the tokens from which the 16-row tiles
  // take a product instead of the row kernels on this box (`strata tune` measures it; absent:
  // the CPU's defaults, cpu-kernels/qdot.h). The names are checked where a run applies them.
  std::map<std::string, int64_t> tiles_min_batch;
  int gpu_offload_batch_threshold = 0;
  std::vector<std::string> nvme_paths;

  bool has_gpu() const { return !gpus.empty() && vram_gb > 0; }
};

// Throws std::runtime_error naming the file and the key on bad JSON, a missing key, a value
// of the wrong type or an impossible value (negative budget, headroom above the budget,
// vram budget with no GPU, zero DRAM bandwidth, an unknown NUMA policy, a NUMA node the
// profile does not have); `flag`, the option that named the file, goes into the messages.
HardwareProfile load_profile(const std::filesystem::path& path, std::string_view flag = {});
HardwareProfile parse_profile(const nlohmann::json& j, const std::string& source_name);
nlohmann::json profile_json(const HardwareProfile& p);

// How the tier allocates its DRAM buffers on this profile (its NUMA policy).
HostMemoryOptions host_memory_options(const HardwareProfile& p);

// A profile by name from a directory of profiles (NAME.json), or a path to a file.
HardwareProfile find_profile(const std::string& name_or_path, const std::filesystem::path& profiles_dir);

}  // namespace strata
