// The compute arena (compute_arena.h): sizing, clamping, pinning, and products unchanged by it.
#include <gtest/gtest.h>
#include <sched.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/linear.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

int cpus_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}

// Restores the default arena whatever a test did.
struct ArenaReset {
  ~ArenaReset() { configure_compute_arena({}); }
};

TEST(ComputeArena, SizedAsAskedAndClampedToTheMachine) {
  ArenaReset reset;
  ArenaInfo one = configure_compute_arena({1, false});
  EXPECT_EQ(one.threads, 1);
  int seen = 0;
  run_in_compute_arena([&] { seen = tbb::this_task_arena::max_concurrency(); });
  EXPECT_EQ(seen, 1);
  const ArenaInfo big = configure_compute_arena({100000, false});
  EXPECT_LT(big.threads, 100000);
  EXPECT_GE(big.threads, 1);
  EXPECT_NE(big.note.find("100000 threads asked"), std::string::npos) << big.note;
  EXPECT_EQ(compute_arena_info().threads, big.threads);
}

TEST(ComputeArena, PinnedWorkersRunOnOneHardwareThreadEach) {
  ArenaReset reset;
  const int before = cpus_allowed();
  const ArenaInfo info = configure_compute_arena({2, true});
  if (!info.pinned) GTEST_SKIP() << "hwloc could not pin here: " << info.note;
  std::atomic<int> pinned_tasks{0}, single_cpu{0}, tasks{0};
  run_in_compute_arena([&] {
    tbb::parallel_for(0, 64, [&](int) {
      ++tasks;
      if (pinned_core_of_this_thread() >= 0) ++pinned_tasks;
      if (cpus_allowed() == 1) ++single_cpu;
    });
  });
  EXPECT_EQ(pinned_tasks.load(), tasks.load()) << "every task ran on a pinned thread";
  EXPECT_EQ(single_cpu.load(), tasks.load()) << "a pinned thread may use one hardware thread";
  EXPECT_GT(pinned_entries(), 0);
  EXPECT_EQ(pinned_core_of_this_thread(), -1) << "the caller is unpinned after leaving the arena";
  EXPECT_EQ(cpus_allowed(), before);
}

TEST(ComputeArena, ProductsDoNotDependOnTheArena) {
  ArenaReset reset;
  const test::Mat m = test::make_matrix(WeightType::Q4_K, 64, 512);
  const WeightView& w = m.view;
  const std::vector<float> x = test::randn(3 * 512, 3);
  std::vector<float> a(3 * 64), b(a.size());
  linear(w, x.data(), 3, a.data());
  configure_compute_arena({1, true});
  linear(w, x.data(), 3, b.data());
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace strata
