#include "memory-tier/host_memory.h"

#include <hwloc.h>
#include <mimalloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "runtime/common/error.h"
#include "runtime/common/units.h"
#ifdef STRATA_HAVE_CUDA
#include "gpu-kernels/pinned.h"
#endif

namespace strata {
namespace {

constexpr size_t kLarge = size_t{2} << 20, kPage = 4096;

std::atomic<uint64_t> g_mapped{0}, g_huge{0}, g_numa{0}, g_numa_skipped{0}, g_pinned{0}, g_pinned_now{0},
    g_pin_failed{0};

#ifdef STRATA_HAVE_CUDA
// Buffers page-locked for the GPU and their mapped sizes, to unregister them on free.
std::mutex g_pinned_mu;
std::unordered_map<void*, size_t>& pinned_buffers() {
  static std::unordered_map<void*, size_t> m;
  return m;
}
#endif

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

// Binds or interleaves [p, p + len) as opts say; whether hwloc did it.
bool place_on_nodes(void* p, size_t len, const HostMemoryOptions& opts) {
  hwloc_topology_t t = topology();
  if (!t || opts.bind_node < 0) return false;
  hwloc_nodeset_t set = hwloc_bitmap_alloc();
  if (opts.numa == NumaPolicy::Bind) hwloc_bitmap_set(set, static_cast<unsigned>(opts.bind_node));
  else hwloc_bitmap_copy(set, hwloc_topology_get_topology_nodeset(t));
  const hwloc_membind_policy_t pol = opts.numa == NumaPolicy::Bind ? HWLOC_MEMBIND_BIND : HWLOC_MEMBIND_INTERLEAVE;
  const bool ok = hwloc_bitmap_isincluded(set, hwloc_topology_get_topology_nodeset(t)) &&
                  hwloc_set_area_membind(t, p, len, set, pol, HWLOC_MEMBIND_BYNODESET) == 0;
  hwloc_bitmap_free(set);
  return ok;
}

void pin(void* p, size_t len) {
#ifdef STRATA_HAVE_CUDA
  if (gpu::pinning_device_count() == 0) return;
  if (!gpu::host_register(p, len)) {
    g_pin_failed += len;
    return;
  }
  std::lock_guard lk(g_pinned_mu);
  pinned_buffers()[p] = len;
  g_pinned += len;
  g_pinned_now += len;
#else
  (void)p, (void)len;
#endif
}

void unpin(void* p) {
#ifdef STRATA_HAVE_CUDA
  size_t len = 0;
  {
    std::lock_guard lk(g_pinned_mu);
    auto it = pinned_buffers().find(p);
    if (it == pinned_buffers().end()) return;
    len = it->second;
    pinned_buffers().erase(it);
  }
  gpu::host_unregister(p);
  g_pinned_now -= len;
#else
  (void)p;
#endif
}

}  // namespace

std::string_view numa_policy_name(NumaPolicy p) {
  switch (p) {
    case NumaPolicy::Default: return "local";
    case NumaPolicy::Interleave: return "interleave";
    case NumaPolicy::Bind: return "bind";
  }
  return "?";
}

std::optional<NumaPolicy> numa_policy_from_name(std::string_view name) {
  for (NumaPolicy p : {NumaPolicy::Default, NumaPolicy::Interleave, NumaPolicy::Bind})
    if (numa_policy_name(p) == name) return p;
  return std::nullopt;
}

std::string describe_numa(const HostMemoryOptions& o) {
  switch (o.numa) {
    case NumaPolicy::Default: return "local (first touch)";
    case NumaPolicy::Interleave: return "interleave";
    case NumaPolicy::Bind: return "bind to node " + std::to_string(o.bind_node);
  }
  return "?";
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
}

int numa_node_count() {
  hwloc_topology_t t = topology();
  const int n = t ? hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE) : 0;
  return n > 0 ? n : 1;
}

bool host_pinning_available(std::string* why) {
#ifdef STRATA_HAVE_CUDA
  std::string w;
  if (gpu::pinning_device_count(&w) > 0) return true;
  if (why) *why = "no CUDA device (" + w + ")";
  return false;
#else
  if (why) *why = "built without CUDA";
  return false;
#endif
}

HostMemoryOptions bound_to_node(HostMemoryOptions o, int node) {
  if (node >= 0) {
    o.numa = NumaPolicy::Bind;
    o.bind_node = node;
  }
  return o;
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
  if (opts.numa != NumaPolicy::Default) {
    if (numa_node_count() > 1 && place_on_nodes(p, len, opts)) g_numa += len;
    else g_numa_skipped += len;
  }
  if (opts.pin) pin(p, len);  // after placement: registering touches (and so places) the pages
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  if (bytes < kLarge) return mi_free(p);
  unpin(p);
  munmap(p, mapped_size(bytes));
}

HostMemoryStats host_memory_stats() {
  return {g_mapped.load(),  g_huge.load(),       g_numa.load(),      g_numa_skipped.load(),
          g_pinned.load(),  g_pinned_now.load(), g_pin_failed.load()};
}

}  // namespace strata
