// DRAM for the memory tier's buffers (expert cache, fixed experts): 4096-aligned so io_uring
// O_DIRECT reads land in place; large buffers mapped directly, advised to transparent huge
// pages (fewer TLB misses while an expert streams through the CPU) and, on a machine with
// several NUMA nodes, interleaved across them or bound to one (hwloc); small ones from
// mimalloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata {

enum class NumaPolicy { Default, Interleave, Bind };

struct HostMemoryOptions {
  bool huge_pages = true;                  // madvise(MADV_HUGEPAGE) on buffers of 2 MiB and more
  NumaPolicy numa = NumaPolicy::Interleave;  // only acted on with more than one NUMA node
  int bind_node = 0;                       // with Bind: the NUMA node (OS index)
};

// What happened to the buffers so far (for tests and statistics).
struct HostMemoryStats {
  uint64_t mapped_bytes = 0;       // from mmap (large buffers)
  uint64_t huge_advised_bytes = 0; // of those, advised to huge pages successfully
  uint64_t numa_placed_bytes = 0;  // of those, bound or interleaved by hwloc
};

// Throws strata::Error when the memory cannot be had.
void* host_alloc(size_t bytes, const HostMemoryOptions& opts = {});
void host_free(void* p, size_t bytes);
HostMemoryStats host_memory_stats();
// NUMA nodes hwloc sees (1 when it cannot tell).
int numa_node_count();

}  // namespace strata
