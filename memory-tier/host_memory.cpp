#include "memory-tier/host_memory.h"

#include <hwloc.h>
#include <mimalloc.h>
#include <sys/mman.h>

#include <atomic>
#include <mutex>

#include "runtime/common/error.h"
#include "runtime/common/units.h"

namespace strata {
namespace {

constexpr size_t kLarge = size_t{2} << 20, kPage = 4096;

std::atomic<uint64_t> g_mapped{0}, g_huge{0}, g_numa{0};

// One hwloc topology for the process (loaded on first use; nullptr when hwloc fails).
hwloc_topology_t topology() {
  static hwloc_topology_t t = [] {
    hwloc_topology_t h = nullptr;
    if (hwloc_topology_init(&h) != 0) return static_cast<hwloc_topology_t>(nullptr);
    if (hwloc_topology_load(h) != 0) {
      hwloc_topology_destroy(h);
      return static_cast<hwloc_topology_t>(nullptr);
    }
    return h;
  }();
  return t;
}

size_t mapped_size(size_t bytes) { return (bytes + kLarge - 1) / kLarge * kLarge; }

}  // namespace

int numa_node_count() {
  hwloc_topology_t t = topology();
  const int n = t ? hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) : 0;
  return n > 0 ? n : 1;
}

void* host_alloc(size_t bytes, const HostMemoryOptions& opts) {
  if (bytes < kLarge) {
    void* p = mi_malloc_aligned(bytes ? bytes : 1, kPage);
    if (!p) throw Error("cannot allocate " + human_bytes(bytes) + " of host memory");
    return p;
  }
  const size_t len = mapped_size(bytes);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("cannot map " + human_bytes(len) + " of host memory");
  g_mapped += len;
  if (opts.huge_pages && madvise(p, len, MADV_HUGEPAGE) == 0) g_huge += len;
  if (opts.numa != NumaPolicy::Default && numa_node_count() > 1) {
    hwloc_topology_t t = topology();
    hwloc_nodeset_t set = hwloc_bitmap_alloc();
    if (opts.numa == NumaPolicy::Bind) hwloc_bitmap_set(set, static_cast<unsigned>(opts.bind_node));
    else hwloc_bitmap_copy(set, hwloc_topology_get_topology_nodeset(t));
    const hwloc_membind_policy_t pol = opts.numa == NumaPolicy::Bind ? HWLOC_MEMBIND_BIND : HWLOC_MEMBIND_INTERLEAVE;
    if (hwloc_set_area_membind(t, p, len, set, pol, HWLOC_MEMBIND_BYNODESET) == 0) g_numa += len;
    hwloc_bitmap_free(set);
  }
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  if (bytes < kLarge) return mi_free(p);
  munmap(p, mapped_size(bytes));
}

HostMemoryStats host_memory_stats() { return {g_mapped.load(), g_huge.load(), g_numa.load()}; }

}  // namespace strata
