// DRAM for the memory tier's buffers (expert cache, fixed experts): 4096-aligned so io_uring
// O_DIRECT reads land in place; large buffers mapped directly, advised to transparent huge
// pages (fewer TLB misses while an expert streams through the CPU), placed on NUMA nodes as
// the options say (interleaved across them, bound to one, or left local to the first touch;
// hwloc, acted on only with more than one node) and, when built with CUDA and a device is
// present, page-locked for the GPU (cudaHostRegister: host-to-device copies run at full PCIe
// speed); small ones from mimalloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata {

// Default: the kernel's own placement (pages local to the thread that first touches them).
enum class NumaPolicy { Default, Interleave, Bind };
// "local" | "interleave" | "bind", as profiles write them.
std::string_view numa_policy_name(NumaPolicy p);
std::optional<NumaPolicy> numa_policy_from_name(std::string_view name);

struct HostMemoryOptions {
  bool huge_pages = true;                    // madvise(MADV_HUGEPAGE) on buffers of 2 MiB and more
  NumaPolicy numa = NumaPolicy::Interleave;  // only acted on with more than one NUMA node
  int bind_node = 0;                         // with Bind: the NUMA node (OS index)
  bool pin = true;  // page-lock buffers of 2 MiB and more for the GPU (only with CUDA and a device)
};

// o, bound to NUMA node `node` (OS index) when node >= 0, else unchanged.
HostMemoryOptions bound_to_node(HostMemoryOptions o, int node);

// "interleave", "bind to node 1", "local (first touch)".
std::string describe_numa(const HostMemoryOptions& o);

// What happened to the buffers so far (for tests and statistics).
struct HostMemoryStats {
  uint64_t mapped_bytes = 0;        // from mmap (large buffers)
  uint64_t huge_advised_bytes = 0;  // of those, advised to huge pages successfully
  uint64_t numa_placed_bytes = 0;   // of those, bound or interleaved by hwloc
  uint64_t numa_skipped_bytes = 0;  // of those, asked to be bound or interleaved but left to the
                                    // kernel: one NUMA node, or hwloc refused (a node that is not there)
  uint64_t pinned_bytes = 0;        // of those, page-locked for the GPU
  uint64_t pinned_now_bytes = 0;    // page-locked and not yet freed
  uint64_t pin_failed_bytes = 0;    // asked to be page-locked, refused by the driver (memlock limit)
};

// Throws strata::Error when the memory cannot be had.
void* host_alloc(size_t bytes, const HostMemoryOptions& opts = {});
// Frees (and unregisters from the GPU) a buffer of host_alloc with the same size.
void host_free(void* p, size_t bytes);
HostMemoryStats host_memory_stats();
// The machine's physical memory as the kernel counts it (pages × page size); 0 when it cannot tell.
uint64_t physical_memory_bytes();
// NUMA nodes hwloc sees (1 when it cannot tell).
int numa_node_count();
// Whether host_alloc page-locks large buffers for the GPU here; when not, *why says why
// ("built without CUDA", "no CUDA device: ...").
bool host_pinning_available(std::string* why = nullptr);

}  // namespace strata
