#include "cpu-kernels/compute_arena.h"

#include <hwloc.h>
#include <tbb/task_arena.h>
#include <tbb/task_scheduler_observer.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace strata {
namespace {

thread_local int t_pinned_core = -1;
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

// Never destroyed: oneTBB workers may still enter or leave an arena (calling the pinning
// observer below) while the process's static objects are being torn down.
Cores& cores() {
  static Cores* c = new Cores;
  return *c;
}

// Binds each thread entering the arena to one hardware thread — slot i to core i mod cores,
// and on that core to hardware thread i / cores (so with more threads than cores, the second
// of each core's threads is used next, never the same one twice) — and unbinds it on exit so a
// worker that moves to another arena runs anywhere again.
class Pinner : public tbb::task_scheduler_observer {
 public:
  explicit Pinner(tbb::task_arena& a) : tbb::task_scheduler_observer(a) { observe(true); }
  ~Pinner() override { observe(false); }
  void on_scheduler_entry(bool) override {
    Cores& c = cores();
    const int slot = tbb::this_task_arena::current_thread_index();
    if (!c.topo || c.cores <= 0 || slot < 0) return;
    const int core = slot % c.cores;
    hwloc_obj_t obj = hwloc_get_obj_by_type(c.topo, HWLOC_OBJ_CORE, static_cast<unsigned>(core));
    if (!obj || !obj->cpuset) return;
    const int pus = hwloc_get_nbobjs_inside_cpuset_by_type(c.topo, obj->cpuset, HWLOC_OBJ_PU);
    if (pus <= 0) return;
    hwloc_obj_t pu = hwloc_get_obj_inside_cpuset_by_type(c.topo, obj->cpuset, HWLOC_OBJ_PU,
                                                         static_cast<unsigned>((slot / c.cores) % pus));
    if (!pu || !pu->cpuset) return;
    if (hwloc_set_cpubind(c.topo, pu->cpuset, HWLOC_CPUBIND_THREAD) == 0) {
      t_pinned_core = core;
      ++g_entries;
    }
  }
  void on_scheduler_exit(bool) override {
    Cores& c = cores();
    if (!c.topo || t_pinned_core < 0) return;
    hwloc_set_cpubind(c.topo, hwloc_topology_get_complete_cpuset(c.topo), HWLOC_CPUBIND_THREAD);
    t_pinned_core = -1;
  }
};

struct State {
  std::mutex mu;
  std::unique_ptr<tbb::task_arena> arena;
  std::unique_ptr<Pinner> pinner;
  // Arenas replaced by a later configure, kept with their observers: oneTBB releases an
  // observer's bookkeeping lazily, from the threads that last saw it, so tearing one down while
  // the process runs on can strand it. An idle arena costs nothing but its slots.
  std::vector<std::pair<std::unique_ptr<tbb::task_arena>, std::unique_ptr<Pinner>>> retired;
  ArenaInfo info;
};

// Lives as long as the process (never destroyed, for the reason above).
State& state() {
  static State* s = new State;
  return *s;
}

}  // namespace

ArenaInfo configure_compute_arena(const ArenaOptions& o) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.arena) s.retired.emplace_back(std::move(s.arena), std::move(s.pinner));
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
  s.arena = std::make_unique<tbb::task_arena>(info.threads);
  s.arena->initialize();
  if (o.pin) {
    if (!c.topo || c.cores <= 0) {
      info.note += std::string(info.note.empty() ? "" : "; ") + "hwloc could not read the cores: threads not pinned";
    } else {
      s.pinner = std::make_unique<Pinner>(*s.arena);
      info.pinned = true;
      if (info.threads > c.cores)
        info.note += std::string(info.note.empty() ? "" : "; ") + std::to_string(info.threads) + " threads on " +
                     std::to_string(c.cores) + " cores: some cores take two";
    }
  }
  g_entries = 0;
  s.info = info;
  return info;
}

ArenaInfo compute_arena_info() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.arena) return s.info;
  ArenaInfo info;
  info.cores = cores().cores;
  info.pus = cores().pus;
  info.threads = tbb::this_task_arena::max_concurrency();
  return info;
}

void run_in_compute_arena(const std::function<void()>& f) {
  tbb::task_arena* a = state().arena.get();
  if (a) a->execute(f);
  else f();
}

int pinned_core_of_this_thread() { return t_pinned_core; }
long pinned_entries() { return g_entries.load(); }

}  // namespace strata
