// Host memory of the tier: alignment, large buffers mapped and advised to huge pages where the
// kernel allows it, NUMA placement only where there are several nodes.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "memory-tier/host_memory.h"

namespace strata {
namespace {

bool thp_possible() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(f, s);
  return f && s.find("[never]") == std::string::npos;
}

TEST(HostMemory, SmallAndLargeBuffersAreAlignedAndUsable) {
  for (size_t bytes : {size_t{1}, size_t{4096}, size_t{100000}, (size_t{2} << 20) - 1}) {
    const HostMemoryStats before = host_memory_stats();
    void* p = host_alloc(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u) << bytes;
    std::memset(p, 0x5a, bytes);
    EXPECT_EQ(static_cast<unsigned char*>(p)[bytes - 1], 0x5a);
    host_free(p, bytes);
    EXPECT_EQ(host_memory_stats().mapped_bytes, before.mapped_bytes) << "small buffers come from mimalloc";
  }
  const size_t big = (size_t{12} << 20) + 123;
  const HostMemoryStats before = host_memory_stats();
  void* p = host_alloc(big);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 4096, 0u);
  std::memset(p, 1, big);
  const HostMemoryStats after = host_memory_stats();
  EXPECT_EQ(after.mapped_bytes - before.mapped_bytes, size_t{14} << 20) << "rounded up to 2 MiB";
  if (thp_possible()) EXPECT_EQ(after.huge_advised_bytes - before.huge_advised_bytes, size_t{14} << 20);
  if (numa_node_count() == 1) EXPECT_EQ(after.numa_placed_bytes, before.numa_placed_bytes);
  else EXPECT_EQ(after.numa_placed_bytes - before.numa_placed_bytes, size_t{14} << 20);
  host_free(p, big);
  HostMemoryOptions plain;
  plain.huge_pages = false;
  plain.numa = NumaPolicy::Default;
  const HostMemoryStats b2 = host_memory_stats();
  void* q = host_alloc(size_t{4} << 20, plain);
  EXPECT_EQ(host_memory_stats().huge_advised_bytes, b2.huge_advised_bytes);
  EXPECT_EQ(host_memory_stats().numa_placed_bytes, b2.numa_placed_bytes);
  host_free(q, size_t{4} << 20);
}

}  // namespace
}  // namespace strata
