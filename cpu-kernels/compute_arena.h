// The threads the model's products run on: one oneTBB arena, sized by the user or the hardware
// profile (clamped to this machine's hardware threads), optionally with each worker pinned by
// hwloc (worker i to core i mod cores, on it hardware thread i / cores), so a memory-bound
// product keeps its threads on distinct cores and its caches warm. Until configured, work runs
// on oneTBB's default arena (all hardware threads, unpinned). The oneDNN batch path runs on
// OpenMP and takes its thread count from OMP_NUM_THREADS.
//
// With a NUMA split, one more arena per NUMA node, its workers bound to that node's cores
// (pinned to single cores with `pin`): routed experts are spread over the nodes
// (expert_home_node) and each is computed by its node's arena, with its memory placed on that
// node by the memory tier, so expert weights never cross the socket link. The dense parts
// (attention, shared experts) keep the whole-machine arena.
#pragma once

#include <functional>
#include <string>

#include "cpu-kernels/function_ref.h"

namespace strata {

struct ArenaOptions {
  int threads = 0;   // 0: every hardware thread
  bool pin = false;  // bind each worker to one core
  bool numa_split = false;  // one arena per NUMA node for the routed experts (nothing to split on one node)
  // With numa_split: split the cores into this many groups as though they were NUMA nodes
  // (no memory to bind; for tests on one-node machines). 0: the real nodes.
  int numa_groups = 0;
};

struct ArenaInfo {
  int threads = 0;         // arena concurrency
  bool pinned = false;     // workers are bound to cores
  int cores = 0, pus = 0;  // what hwloc sees
  int nodes = 1;           // arenas the routed experts are spread over
  std::string note;        // e.g. why the request was clamped or pinning could not be done
};

// (Re)builds the arenas; call while no work runs in them.
ArenaInfo configure_compute_arena(const ArenaOptions& o);
ArenaInfo compute_arena_info();
// Runs f inside the arena (directly when the caller already is in one of the compute arenas,
// so a product inside a node's expert stays on that node).
void run_in_compute_arena(FunctionRef<void()> f);

// While one lives, work this thread starts stays on the thread's current oneTBB arena instead
// of entering the compute arenas (run_in_compute_arena and run_on_compute_node(s) run it
// directly). A simulated device's worker computes inside its own arena this way, as a device
// computes with its own cores, rather than taking the CPU's.
class StayInOwnArena {
 public:
  StayInOwnArena();
  ~StayInOwnArena();
  StayInOwnArena(const StayInOwnArena&) = delete;
  StayInOwnArena& operator=(const StayInOwnArena&) = delete;

 private:
  bool prev_;
};

// The node arenas: compute_nodes() of them (1 without a split: then node 0 is the arena above).
int compute_nodes();
// The NUMA node (OS index) node arena k computes on; -1 without a split or for a group of cores.
int compute_node_os_index(int k);
// The node an expert is computed on and its memory placed: expert mod compute_nodes().
int expert_home_node(int expert);
// Runs f(k) inside node arena k for every k, all at once; returns when all are done (rethrows
// the first failure).
void run_on_compute_nodes(FunctionRef<void(int)> f);
// Runs f inside node arena k.
void run_on_compute_node(int k, FunctionRef<void()> f);

// For tests: the core index the calling thread was pinned to on entering the arena (-1: none),
// how many times workers have been pinned since configure, and which arena the calling thread
// is in (-1: none of these, 0: the whole-machine arena, 1 + k: node arena k).
int pinned_core_of_this_thread();
long pinned_entries();
int compute_arena_of_this_thread();

}  // namespace strata
