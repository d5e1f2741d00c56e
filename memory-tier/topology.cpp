#include "memory-tier/topology.h"

#include <hwloc.h>

#include <memory>
#include <algorithm>
#include <stdexcept>

#include "memory-tier/host_memory.h"

namespace strata {
namespace {

struct TopologyHandle {
  hwloc_topology_t t = nullptr;
  TopologyHandle() {
    if (hwloc_topology_init(&t) != 0) throw std::runtime_error("hwloc_topology_init failed");
    if (hwloc_topology_load(t) != 0) {
      hwloc_topology_destroy(t);
      throw std::runtime_error("hwloc_topology_load failed");
    }
  }
  ~TopologyHandle() { hwloc_topology_destroy(t); }
  TopologyHandle(const TopologyHandle&) = delete;
  TopologyHandle& operator=(const TopologyHandle&) = delete;
};

int count(hwloc_topology_t t, hwloc_obj_type_t type) {
  const int n = hwloc_get_nbobjs_by_type(t, type);
  return n < 0 ? 0 : n;
}

}  // namespace

Topology probe_topology() {
  TopologyHandle h;
  Topology topo;
  topo.packages = count(h.t, HWLOC_OBJ_PACKAGE);
  topo.cores = count(h.t, HWLOC_OBJ_CORE);
  topo.threads = count(h.t, HWLOC_OBJ_PU);
  hwloc_obj_t root = hwloc_get_root_obj(h.t);
  // Virtual machines with hot-plugged memory can show hwloc less than the kernel has: take the
  // larger of hwloc's figure and the kernel's physical page count.
  topo.total_memory_bytes = std::max<uint64_t>(root->total_memory, physical_memory_bytes());
  if (hwloc_obj_t pkg = hwloc_get_obj_by_type(h.t, HWLOC_OBJ_PACKAGE, 0)) {
    if (const char* model = hwloc_obj_get_info_by_name(pkg, "CPUModel")) topo.cpu_model = model;
  }
  const int n_numa = count(h.t, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < n_numa; ++i) {
    hwloc_obj_t node = hwloc_get_obj_by_type(h.t, HWLOC_OBJ_NUMANODE, i);
    NumaNode n;
    n.os_index = static_cast<int>(node->os_index);
    n.memory_bytes = node->attr ? node->attr->numanode.local_memory : 0;
    n.cores = hwloc_get_nbobjs_inside_cpuset_by_type(h.t, node->cpuset, HWLOC_OBJ_CORE);
    topo.numa.push_back(n);
  }
  return topo;
}

}  // namespace strata
