#include "cpu-kernels/compute_arena.h"

#include <hwloc.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>
#include <tbb/task_scheduler_observer.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace strata {
namespace {

thread_local int t_pinned_core = -1;
thread_local bool t_bound = false;
// The compute arenas the calling thread is in, innermost last (trivially destructible: read by
// observers that may run while threads exit).
thread_local int t_arenas[16];
thread_local int t_depth = 0;
thread_local bool t_own_arena = false;  // StayInOwnArena
std::atomic<long> g_entries{0};

// hwloc's view of the cores, loaded once; pinning is skipped when it cannot load.
struct Cores {
  hwloc_topology_t topo = nullptr;
  int cores = 0, pus = 0;
  Cores() {
    if (hwloc_topology_init(&topo) != 0) {
      topo = nullptr;
      return;
    }
    if (hwloc_topology_load(topo) != 0) {
      hwloc_topology_destroy(topo);
      topo = nullptr;
      return;
    }
    cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  }
};

// Never destroyed: oneTBB workers may still enter or leave an arena (calling the observer
// below) while the process's static objects are being torn down.
Cores& cores() {
  static Cores* c = new Cores;
  return *c;
}

// Tracks which compute arena a thread is in and binds it there. The scope is the arena's
// hardware threads (a NUMA node's, or null: the whole machine). With `pin` each thread entering
// gets one hardware thread of the scope — slot i to the scope's core i mod cores, and on that
// core hardware thread i / cores (with more threads than cores the second of each core's
// threads is used next, never the same one twice); without it a node arena's threads are bound
// to the node's hardware threads as a whole. Leaving unbinds, so a worker moving to another
// arena runs anywhere again.
class ArenaObserver : public tbb::task_scheduler_observer {
 public:
  ArenaObserver(tbb::task_arena& a, int id, hwloc_const_bitmap_t scope, bool pin)
      : tbb::task_scheduler_observer(a), id_(id), pin_(pin), scope_(scope ? hwloc_bitmap_dup(scope) : nullptr) {
    observe(true);
  }
  ~ArenaObserver() override {
    observe(false);
    if (scope_) hwloc_bitmap_free(scope_);
  }
  void on_scheduler_entry(bool) override {
    if (t_depth < 16) t_arenas[t_depth] = id_;
    ++t_depth;
    Cores& c = cores();
    if (!c.topo || (!pin_ && !scope_)) return;
    hwloc_const_bitmap_t scope = scope_ ? scope_ : hwloc_topology_get_complete_cpuset(c.topo);
    if (!pin_) {
      if (hwloc_set_cpubind(c.topo, scope, HWLOC_CPUBIND_THREAD) == 0) t_bound = true;
      return;
    }
    const int slot = tbb::this_task_arena::current_thread_index();
    const int n = hwloc_get_nbobjs_inside_cpuset_by_type(c.topo, scope, HWLOC_OBJ_CORE);
    if (slot < 0 || n <= 0) return;
    hwloc_obj_t core = hwloc_get_obj_inside_cpuset_by_type(c.topo, scope, HWLOC_OBJ_CORE, static_cast<unsigned>(slot % n));
    if (!core || !core->cpuset) return;
    const int pus = hwloc_get_nbobjs_inside_cpuset_by_type(c.topo, core->cpuset, HWLOC_OBJ_PU);
    if (pus <= 0) return;
    hwloc_obj_t pu = hwloc_get_obj_inside_cpuset_by_type(c.topo, core->cpuset, HWLOC_OBJ_PU,
                                                         static_cast<unsigned>((slot / n) % pus));
    if (!pu || !pu->cpuset) return;
    if (hwloc_set_cpubind(c.topo, pu->cpuset, HWLOC_CPUBIND_THREAD) == 0) {
      t_pinned_core = static_cast<int>(core->logical_index);
      t_bound = true;
      ++g_entries;
    }
  }
  void on_scheduler_exit(bool) override {
    if (t_depth > 0) --t_depth;
    Cores& c = cores();
    if (!c.topo || !t_bound) return;
    hwloc_set_cpubind(c.topo, hwloc_topology_get_complete_cpuset(c.topo), HWLOC_CPUBIND_THREAD);
    t_pinned_core = -1;
    t_bound = false;
  }

 private:
  int id_;
  bool pin_;
  hwloc_bitmap_t scope_;
};

struct Arena {
  std::unique_ptr<tbb::task_arena> arena;
  std::unique_ptr<ArenaObserver> observer;
  int os_node = -1;
};

struct State {
  std::mutex mu;
  Arena main;
  std::vector<Arena> nodes;  // with a NUMA split only
  // Arenas replaced by a later configure, kept with their observers: oneTBB releases an
  // observer's bookkeeping lazily, from the threads that last saw it, so tearing one down while
  // the process runs on can strand it. An idle arena costs nothing but its slots.
  std::vector<Arena> retired;
  ArenaInfo info;
};

// Lives as long as the process (never destroyed, for the reason above).
State& state() {
  static State* s = new State;
  return *s;
}

// A node arena's hardware threads and its NUMA node (-1 for a group of cores).
struct Scope {
  hwloc_bitmap_t cpuset;
  int os_node;
  int pus;
};

// The real NUMA nodes that have cores, or `groups` runs of consecutive cores.
std::vector<Scope> split_scopes(const Cores& c, int groups) {
  std::vector<Scope> out;
  if (groups > 0) {
    const int g = std::min(groups, c.cores);
    for (int k = 0; k < g; ++k) {
      hwloc_bitmap_t set = hwloc_bitmap_alloc();
      for (int i = k * c.cores / g; i < (k + 1) * c.cores / g; ++i)
        if (hwloc_obj_t core = hwloc_get_obj_by_type(c.topo, HWLOC_OBJ_CORE, static_cast<unsigned>(i)))
          hwloc_bitmap_or(set, set, core->cpuset);
      out.push_back({set, -1, hwloc_get_nbobjs_inside_cpuset_by_type(c.topo, set, HWLOC_OBJ_PU)});
    }
    return out;
  }
  const int n = hwloc_get_nbobjs_by_type(c.topo, HWLOC_OBJ_NUMANODE);
  for (int k = 0; k < n; ++k) {
    hwloc_obj_t node = hwloc_get_obj_by_type(c.topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(k));
    if (!node || !node->cpuset || hwloc_bitmap_iszero(node->cpuset)) continue;  // memory-only node
    const int pus = hwloc_get_nbobjs_inside_cpuset_by_type(c.topo, node->cpuset, HWLOC_OBJ_PU);
    if (pus > 0) out.push_back({hwloc_bitmap_dup(node->cpuset), static_cast<int>(node->os_index), pus});
  }
  return out;
}

void add_note(ArenaInfo& info, const std::string& s) { info.note += (info.note.empty() ? "" : "; ") + s; }

}  // namespace

ArenaInfo configure_compute_arena(const ArenaOptions& o) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.main.arena) s.retired.push_back(std::move(s.main));
  for (Arena& a : s.nodes) s.retired.push_back(std::move(a));
  s.main = Arena{};
  s.nodes.clear();
  const Cores& c = cores();
  ArenaInfo info;
  info.cores = c.cores;
  info.pus = c.pus;
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  const int max_threads = c.pus > 0 ? c.pus : (hw > 0 ? hw : 1);
  info.threads = o.threads > 0 ? o.threads : max_threads;
  if (info.threads > max_threads) {
    info.note = std::to_string(o.threads) + " threads asked, this machine has " + std::to_string(max_threads) +
                ": using " + std::to_string(max_threads);
    info.threads = max_threads;
  }
  const bool can_bind = c.topo && c.cores > 0;
  if (o.pin && !can_bind) add_note(info, "hwloc could not read the cores: threads not pinned");
  s.main.arena = std::make_unique<tbb::task_arena>(info.threads);
  s.main.arena->initialize();
  s.main.observer = std::make_unique<ArenaObserver>(*s.main.arena, 0, nullptr, o.pin && can_bind);
  if (o.pin && can_bind) {
    info.pinned = true;
    if (info.threads > c.cores)
      add_note(info, std::to_string(info.threads) + " threads on " + std::to_string(c.cores) + " cores: some cores take two");
  }
  if (o.numa_split) {
    std::vector<Scope> scopes = can_bind ? split_scopes(c, o.numa_groups) : std::vector<Scope>{};
    if (!can_bind) {
      add_note(info, "hwloc could not read the machine: no NUMA split");
    } else if (scopes.size() < 2) {
      add_note(info, "one NUMA node: nothing to split");
    } else {
      // Each node's share of the threads, in proportion to its hardware threads (at least one).
      int total_pus = 0;
      for (const Scope& sc : scopes) total_pus += sc.pus;
      for (size_t k = 0; k < scopes.size(); ++k) {
        const int t = std::max(1, (info.threads * scopes[k].pus + total_pus / 2) / total_pus);
        Arena a;
        // No slot reserved for an external thread: the workers fill the node's arena while the
        // caller works in another.
        a.arena = std::make_unique<tbb::task_arena>(t, 0);
        a.arena->initialize();
        a.observer = std::make_unique<ArenaObserver>(*a.arena, 1 + static_cast<int>(k), scopes[k].cpuset, o.pin);
        a.os_node = scopes[k].os_node;
        s.nodes.push_back(std::move(a));
      }
      info.nodes = static_cast<int>(s.nodes.size());
    }
    for (Scope& sc : scopes) hwloc_bitmap_free(sc.cpuset);
  }
  g_entries = 0;
  s.info = info;
  return info;
}

ArenaInfo compute_arena_info() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.main.arena) return s.info;
  ArenaInfo info;
  info.cores = cores().cores;
  info.pus = cores().pus;
  info.threads = tbb::this_task_arena::max_concurrency();
  return info;
}

StayInOwnArena::StayInOwnArena() : prev_(t_own_arena) { t_own_arena = true; }
StayInOwnArena::~StayInOwnArena() { t_own_arena = prev_; }

void run_in_compute_arena(FunctionRef<void()> f) {
  tbb::task_arena* a = state().main.arena.get();
  if (a && t_depth == 0 && !t_own_arena) a->execute(f);
  else f();
}

int compute_nodes() { return std::max<int>(1, static_cast<int>(state().nodes.size())); }

int compute_node_os_index(int k) {
  const State& s = state();
  return k >= 0 && k < static_cast<int>(s.nodes.size()) ? s.nodes[static_cast<size_t>(k)].os_node : -1;
}

int expert_home_node(int expert) { return expert < 0 ? 0 : expert % compute_nodes(); }

void run_on_compute_node(int k, FunctionRef<void()> f) {
  State& s = state();
  if (s.nodes.empty() || t_own_arena) return run_in_compute_arena(f);
  s.nodes.at(static_cast<size_t>(k)).arena->execute(f);
}

void run_on_compute_nodes(FunctionRef<void(int)> f) {
  State& s = state();
  const size_t n = s.nodes.size();
  if (n == 0) return run_in_compute_arena([&] { f(0); });
  if (t_own_arena) {
    for (size_t k = 0; k < n; ++k) f(static_cast<int>(k));
    return;
  }
  // Every node's work is handed to its arena first; the caller then works in node 0 and
  // waits for the others (helping in each arena as it waits).
  std::unique_ptr<tbb::task_group[]> groups(new tbb::task_group[n]);
  for (size_t k = 1; k < n; ++k)
    s.nodes[k].arena->execute([&, k] { groups[k].run([&f, k] { f(static_cast<int>(k)); }); });
  std::exception_ptr first;
  for (size_t k = 0; k < n; ++k) {
    try {
      if (k == 0) s.nodes[0].arena->execute([&] { groups[0].run_and_wait([&f] { f(0); }); });
      else s.nodes[k].arena->execute([&, k] { groups[k].wait(); });
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

int pinned_core_of_this_thread() { return t_pinned_core; }
long pinned_entries() { return g_entries.load(); }
int compute_arena_of_this_thread() { return t_depth > 0 && t_depth <= 16 ? t_arenas[t_depth - 1] : -1; }

}  // namespace strata
