// What this box has, read with hwloc: cores, hardware threads, NUMA nodes and their memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct NumaNode {
  int os_index = 0;
  uint64_t memory_bytes = 0;
  int cores = 0;
};

struct Topology {
  std::string cpu_model;
  int packages = 0;
  int cores = 0;
  int threads = 0;  // processing units
  uint64_t total_memory_bytes = 0;
  std::vector<NumaNode> numa;
};

// Reads the machine's topology; throws std::runtime_error when hwloc cannot load it.
Topology probe_topology();

}  // namespace strata
