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
  if (thp_possible()) {
    EXPECT_EQ(after.huge_advised_bytes - before.huge_advised_bytes, size_t{14} << 20);
  }
  if (numa_node_count() == 1) {
    EXPECT_EQ(after.numa_placed_bytes, before.numa_placed_bytes);
  } else {
    EXPECT_EQ(after.numa_placed_bytes - before.numa_placed_bytes, size_t{14} << 20);
  }
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

TEST(HostMemory, EveryNumaPolicyAllocatesAndCountsWhereItWasApplied) {
  const size_t bytes = size_t{4} << 20;
  const bool one_node = numa_node_count() == 1;
  for (NumaPolicy pol : {NumaPolicy::Default, NumaPolicy::Interleave, NumaPolicy::Bind}) {
    SCOPED_TRACE(std::string(numa_policy_name(pol)));
    EXPECT_EQ(numa_policy_from_name(numa_policy_name(pol)), pol);
    HostMemoryOptions o;
    o.numa = pol;
    o.bind_node = 0;
    const HostMemoryStats before = host_memory_stats();
    void* p = host_alloc(bytes, o);
    std::memset(p, 7, bytes);
    EXPECT_EQ(static_cast<unsigned char*>(p)[bytes - 1], 7);
    const HostMemoryStats after = host_memory_stats();
    const uint64_t placed = after.numa_placed_bytes - before.numa_placed_bytes;
    const uint64_t skipped = after.numa_skipped_bytes - before.numa_skipped_bytes;
    if (pol == NumaPolicy::Default) {
      EXPECT_EQ(placed + skipped, 0u) << "local: the kernel places the pages, nothing asked of hwloc";
    } else if (one_node) {
      EXPECT_EQ(placed, 0u);
      EXPECT_EQ(skipped, bytes) << "one NUMA node: nothing to spread or bind, counted as skipped";
    } else {
      EXPECT_EQ(placed + skipped, bytes);
    }
    host_free(p, bytes);
  }
  EXPECT_FALSE(numa_policy_from_name("spread"));
  // A node that is not there: the buffer is still had, left to the kernel.
  HostMemoryOptions far;
  far.numa = NumaPolicy::Bind;
  far.bind_node = 4095;
  const HostMemoryStats before = host_memory_stats();
  void* p = host_alloc(bytes, far);
  std::memset(p, 1, bytes);
  EXPECT_EQ(host_memory_stats().numa_skipped_bytes - before.numa_skipped_bytes, bytes);
  EXPECT_EQ(host_memory_stats().numa_placed_bytes, before.numa_placed_bytes);
  host_free(p, bytes);
}

TEST(HostMemory, WithoutAGpuPinningIsANoOp) {
  std::string why;
  if (host_pinning_available(&why)) GTEST_SKIP() << "a CUDA device is present; HostMemory.LargeBuffersArePinnedForTheGpu covers it";
  EXPECT_FALSE(why.empty());
  const HostMemoryStats before = host_memory_stats();
  const size_t bytes = size_t{4} << 20;
  HostMemoryOptions o;
  o.pin = true;
  void* p = host_alloc(bytes, o);
  std::memset(p, 3, bytes);
  host_free(p, bytes);
  const HostMemoryStats after = host_memory_stats();
  EXPECT_EQ(after.pinned_bytes, 0u) << why;
  EXPECT_EQ(after.pinned_now_bytes, 0u);
  EXPECT_EQ(after.pin_failed_bytes, before.pin_failed_bytes) << "not attempted without a device";
}

TEST(HostMemory, LargeBuffersArePinnedForTheGpu) {
  std::string why;
  if (!host_pinning_available(&why)) GTEST_SKIP() << "no page-locking here: " << why;
  const size_t big = (size_t{6} << 20) + 1, small = 4096;
  HostMemoryOptions o;
  o.pin = true;
  const HostMemoryStats before = host_memory_stats();
  void* p = host_alloc(big, o);
  void* q = host_alloc(small, o);
  std::memset(p, 9, big);
  const HostMemoryStats during = host_memory_stats();
  if (during.pin_failed_bytes > before.pin_failed_bytes) GTEST_SKIP() << "the driver refused (memlock limit?)";
  EXPECT_EQ(during.pinned_bytes - before.pinned_bytes, size_t{8} << 20) << "the mapped size, small buffers not pinned";
  EXPECT_EQ(during.pinned_now_bytes - before.pinned_now_bytes, size_t{8} << 20);
  o.pin = false;
  void* r = host_alloc(big, o);
  EXPECT_EQ(host_memory_stats().pinned_bytes, during.pinned_bytes) << "pin = false";
  host_free(r, big);
  host_free(q, small);
  host_free(p, big);
  EXPECT_EQ(host_memory_stats().pinned_now_bytes, before.pinned_now_bytes) << "unregistered on free";
}

}  // namespace
}  // namespace strata
