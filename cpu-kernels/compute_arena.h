// The threads the model's products run on: one oneTBB arena, sized by the user or the hardware
// profile (clamped to this machine's hardware threads), optionally with each worker pinned by
// hwloc (worker i to core i mod cores, on it hardware thread i / cores), so a memory-
// bound product keeps its threads on distinct cores and its caches warm. Until configured, work
// runs on oneTBB's default arena (all hardware threads, unpinned). The oneDNN batch path runs
// on OpenMP and takes its thread count from OMP_NUM_THREADS.
#pragma once

#include <functional>
#include <string>

namespace strata {

struct ArenaOptions {
  int threads = 0;   // 0: every hardware thread
  bool pin = false;  // bind each worker to one core
};

struct ArenaInfo {
  int threads = 0;       // arena concurrency
  bool pinned = false;   // workers are bound to cores
  int cores = 0, pus = 0;  // what hwloc sees
  std::string note;      // e.g. why the request was clamped or pinning could not be done
};

// (Re)builds the arena; call while no work runs in it.
ArenaInfo configure_compute_arena(const ArenaOptions& o);
ArenaInfo compute_arena_info();
// Runs f inside the arena (directly when the caller already is in it).
void run_in_compute_arena(const std::function<void()>& f);

// For tests: the core index the calling thread was pinned to on entering the arena (-1: none),
// and how many times workers have been pinned since configure.
int pinned_core_of_this_thread();
long pinned_entries();

}  // namespace strata
