#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "memory-tier/topology.h"

namespace strata {
namespace {

TEST(Topology, AgreesWithTheOperatingSystem) {
  const Topology t = probe_topology();
  EXPECT_GE(t.cores, 1);
  EXPECT_GE(t.threads, t.cores);
  EXPECT_EQ(static_cast<unsigned>(t.threads), std::thread::hardware_concurrency());
  ASSERT_GE(t.numa.size(), 1u);
  uint64_t numa_total = 0;
  int numa_cores = 0;
  for (const auto& n : t.numa) {
    numa_total += n.memory_bytes;
    numa_cores += n.cores;
  }
  // hwloc's NUMA memory, or the kernel's page count where a VM shows hwloc less.
  const uint64_t kernel = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(t.total_memory_bytes, std::max(numa_total, kernel));
  EXPECT_EQ(numa_cores, t.cores);
  EXPECT_GT(t.total_memory_bytes, 256ull << 20);
}

}  // namespace
}  // namespace strata
