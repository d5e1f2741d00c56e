// The compute arena (compute_arena.h): sizing, clamping, pinning, and products unchanged by it.
#include <gtest/gtest.h>
#include <sched.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <stdexcept>
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

// A NUMA split on this machine's real nodes: with one node there is nothing to split.
TEST(ComputeArena, SplitOnOneNodeKeepsOneArena) {
  ArenaReset reset;
  ArenaOptions o;
  o.numa_split = true;
  const ArenaInfo info = configure_compute_arena(o);
  if (info.nodes > 1) GTEST_SKIP() << "this machine has " << info.nodes << " NUMA nodes";
  EXPECT_EQ(compute_nodes(), 1);
  EXPECT_NE(info.note.find("one NUMA node: nothing to split"), std::string::npos) << info.note;
  int arena = -2;
  run_on_compute_nodes([&](int k) {
    EXPECT_EQ(k, 0);
    arena = compute_arena_of_this_thread();
  });
  EXPECT_EQ(arena, 0) << "node 0 is the whole-machine arena";
}

// Groups of cores stand in for NUMA nodes: each group's arena has its share of the threads,
// bound to the group's hardware threads, and products started inside stay there.
TEST(ComputeArena, NodeArenasKeepTheirWorkOnTheirCores) {
  ArenaReset reset;
  ArenaOptions o;
  o.numa_split = true;
  o.numa_groups = 2;
  o.threads = 2;
  const ArenaInfo info = configure_compute_arena(o);
  if (info.cores < 2) GTEST_SKIP() << "one core: no two groups to make";
  ASSERT_EQ(info.nodes, 2) << info.note;
  ASSERT_EQ(compute_nodes(), 2);
  EXPECT_EQ(compute_node_os_index(0), -1) << "a group of cores is no NUMA node";
  for (int e = 0; e < 6; ++e) EXPECT_EQ(expert_home_node(e), e % 2);
  const int whole = cpus_allowed();
  std::atomic<int> wrong_arena{0}, tasks{0}, ran[2] = {0, 0}, concurrency[2] = {0, 0}, cpus[2] = {0, 0};
  run_on_compute_nodes([&](int k) {
    ++ran[k];
    concurrency[k] = tbb::this_task_arena::max_concurrency();
    cpus[k] = cpus_allowed();
    // A product's own parallel job, as linear() starts one, stays in the node's arena.
    run_in_compute_arena([&] {
      tbb::parallel_for(0, 32, [&](int) {
        ++tasks;
        if (compute_arena_of_this_thread() != 1 + k) ++wrong_arena;
      });
    });
  });
  EXPECT_EQ(ran[0].load(), 1);
  EXPECT_EQ(ran[1].load(), 1);
  EXPECT_EQ(tasks.load(), 64);
  EXPECT_EQ(wrong_arena.load(), 0) << "every task of a node's product ran in that node's arena";
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(concurrency[k].load(), 1) << "two threads over two groups: one each";
    EXPECT_GE(cpus[k].load(), 1);
    EXPECT_LT(cpus[k].load(), whole) << "a node's threads are bound to its hardware threads";
  }
  EXPECT_EQ(compute_arena_of_this_thread(), -1);
  EXPECT_EQ(cpus_allowed(), whole) << "the caller is unbound after leaving the node arenas";
  // A failure in one node's work reaches the caller once every node is done.
  std::atomic<int> finished{0};
  EXPECT_THROW(run_on_compute_nodes([&](int k) {
                 if (k == 1) throw std::runtime_error("node 1 failed");
                 ++finished;
               }),
               std::runtime_error);
  EXPECT_EQ(finished.load(), 1);
}

}  // namespace
}  // namespace strata
