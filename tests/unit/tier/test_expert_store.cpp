// ExpertStore: contents, the budget, pinning, frequency-with-decay replacement, prefetch and
// read failures, on both reader backends.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "memory-tier/expert_store.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

constexpr uint64_t kItem = 10000;  // bytes of each test item: 2 ranges, 12288 bytes in DRAM

struct Fixture {
  test::ScratchDir dir{"store"};
  std::vector<uint8_t> a, b;
  std::vector<std::filesystem::path> files;
  std::vector<StoreItem> items;
  explicit Fixture(int n_items = 12) {
    std::mt19937 g(3);
    a.resize(n_items * 7000 + 5);
    b.resize(n_items * 3000 + 7);
    for (auto& x : a) x = static_cast<uint8_t>(g());
    for (auto& x : b) x = static_cast<uint8_t>(g());
    test::write_bytes(dir / "a.bin", a);
    test::write_bytes(dir / "b.bin", b);
    files = {dir / "a.bin", dir / "b.bin"};
    // Item i: 7000 bytes of a.bin at an odd offset and 3000 of b.bin (10000 bytes).
    for (int i = 0; i < n_items; ++i)
      items.emplace_back().ranges = {{0, static_cast<uint64_t>(i) * 7000 + 5, 7000}, {1, static_cast<uint64_t>(i) * 3000 + 7, 3000}};
  }
  bool same(const ExpertStore::Pin& p, int i) const {
    return std::memcmp(p.data(0), a.data() + i * 7000 + 5, 7000) == 0 &&
           std::memcmp(p.data(1), b.data() + i * 3000 + 7, 3000) == 0;
  }
};

ExpertStoreOptions options(uint64_t budget, bool force_pread = false) {
  ExpertStoreOptions o;
  o.budget_bytes = budget;
  o.io.force_pread = force_pread;
  return o;
}

class ExpertStoreBackends : public ::testing::TestWithParam<bool> {};

TEST_P(ExpertStoreBackends, ContentsAndBudgetUnderRandomAccess) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(3 * 12288, GetParam()));
  ASSERT_EQ(s.item_bytes(0), 12288u);
  std::mt19937 g(7);
  for (int step = 0; step < 300; ++step) {
    if (step % 5 == 0) {
      const uint32_t ahead[] = {static_cast<uint32_t>(g() % 12), static_cast<uint32_t>(g() % 12)};
      s.prefetch(ahead);
    }
    const int i = static_cast<int>(g() % 12);
    auto pin = s.acquire(static_cast<uint32_t>(i));
    ASSERT_TRUE(f.same(pin, i)) << "item " << i << " at step " << step;
    ASSERT_LE(s.stats().resident_bytes, s.budget());
    if (step % 3 == 0) s.tick();
  }
  const ExpertStoreStats st = s.stats();
  EXPECT_LE(st.peak_bytes, s.budget());
  EXPECT_EQ(st.hits + st.late + st.misses, 300u);
  EXPECT_GT(st.hits, 0u);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.failures, 0u);
  EXPECT_EQ(st.bytes_read % kItem, 0u);
  EXPECT_EQ(st.bytes_read / kItem, st.misses + st.prefetched);
}

INSTANTIATE_TEST_SUITE_P(Reader, ExpertStoreBackends, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? std::string("pread") : std::string("default"); });

TEST(ExpertStore, PinnedItemsAreNeverEvicted) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(2 * 12288));
  auto p0 = s.acquire(0);
  auto p1 = s.acquire(1);
  STRATA_EXPECT_ERROR(s.acquire(2), "cannot hold item 2", "budget", "pinned");
  EXPECT_TRUE(f.same(p0, 0));
  EXPECT_TRUE(f.same(p1, 1));
  p1 = {};  // released
  auto p2 = s.acquire(2);
  EXPECT_TRUE(f.same(p2, 2));
  EXPECT_TRUE(s.resident(0));
  EXPECT_FALSE(s.resident(1));
}

TEST(ExpertStore, FrequentItemSurvivesASweepUntilItFades) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(3 * 12288));
  for (int k = 0; k < 5; ++k) s.acquire(0);  // hot
  // A sweep over other items: LRU would evict item 0 after two of them.
  for (uint32_t i = 1; i < 8; ++i) s.acquire(i);
  EXPECT_TRUE(s.resident(0));
  // Many ticks later its score has decayed below one access: the next sweep evicts it.
  for (int t = 0; t < 40; ++t) s.tick();
  for (uint32_t i = 8; i < 12; ++i) s.acquire(i);
  EXPECT_FALSE(s.resident(0));
}

TEST(ExpertStore, PrefetchedItemsAreNotMisses) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(4 * 12288));
  const uint32_t ahead[] = {3, 4, 5};
  s.prefetch(ahead);
  for (uint32_t i : ahead) EXPECT_TRUE(f.same(s.acquire(i), static_cast<int>(i)));
  const ExpertStoreStats st = s.stats();
  EXPECT_EQ(st.misses, 0u);
  EXPECT_EQ(st.hits + st.late, 3u);
  EXPECT_EQ(st.prefetched, 3u);
}

TEST(ExpertStore, PrefetchDoesNotEvictHotterItems) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(2 * 12288));
  for (int k = 0; k < 3; ++k) s.acquire(0), s.acquire(1);
  const uint32_t ahead[] = {2};
  s.prefetch(ahead);
  EXPECT_EQ(s.stats().prefetched, 0u);
  EXPECT_TRUE(s.resident(0));
  EXPECT_TRUE(s.resident(1));
  EXPECT_FALSE(s.resident(2));
}

TEST(ExpertStore, ReadErrorNamesFileAndOffsetAndIsRetried) {
  Fixture f;
  std::atomic<bool> broken{true};
  ExpertStoreOptions o = options(4 * 12288);
  // A read of b.bin spanning all of item 2's range [6007, 9007) fails with EIO while `broken`
  // (the aligned reads of items 1 and 3 each cover only one end of it).
  o.io.fault = [&](uint32_t file, uint64_t off, uint32_t len, int res) {
    return broken && file == 1 && off <= 6007 && 9006 < off + len ? -EIO : res;
  };
  ExpertStore s(f.files, f.items, o);
  const uint32_t ahead[] = {1, 2, 3};
  s.prefetch(ahead);
  EXPECT_TRUE(f.same(s.acquire(1), 1));
  STRATA_EXPECT_ERROR(s.acquire(2), "b.bin", "offset");
  EXPECT_FALSE(s.resident(2));
  EXPECT_TRUE(f.same(s.acquire(3), 3));
  EXPECT_GE(s.stats().failures, 1u);
  broken = false;
  EXPECT_TRUE(f.same(s.acquire(2), 2));
}

TEST(ExpertStore, FixedItemsStayOutsideTheCacheBudget) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(12288));  // a cache of one item
  s.acquire(0);                                       // cached first, then fixed
  const uint32_t fixed[] = {0, 1, 2};
  std::vector<std::pair<size_t, size_t>> heard;  // progress: each item once, of 3
  s.fix(fixed, [&](size_t done, size_t total) { heard.emplace_back(done, total); });
  EXPECT_EQ(heard, (std::vector<std::pair<size_t, size_t>>{{1, 3}, {2, 3}, {3, 3}}));
  for (int round = 0; round < 3; ++round)
    for (uint32_t i = 0; i < 8; ++i) EXPECT_TRUE(f.same(s.acquire(i), static_cast<int>(i))) << i;
  for (uint32_t i : fixed) EXPECT_TRUE(s.resident(i));
  const ExpertStoreStats st = s.stats();
  EXPECT_EQ(st.fixed_bytes, 3 * 12288u);
  EXPECT_EQ(st.fixed_uses, 9u);
  EXPECT_EQ(st.fixed_bytes_used, 9 * 12288u);
  EXPECT_EQ(st.cached_bytes_used, 16 * 12288u);  // 1 before fixing + 15 after
  EXPECT_EQ(st.hits + st.late + st.misses, 16u);
  EXPECT_LE(st.peak_bytes, 12288u);
  EXPECT_LE(st.resident_bytes, 12288u);
}

// A fixed item's bytes are its holder's to rewrite (the CPU's repacked layout): the writable
// view is the pinned one, and what was written stays; an item not fixed has none.
TEST(ExpertStore, FixedItemsAreWritableInPlace) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(12288));
  const uint32_t fixed[] = {2};
  s.fix(fixed);
  uint8_t* p = s.fixed_data(2, 1);
  EXPECT_EQ(p, s.acquire(2).data(1));
  p[0] = static_cast<uint8_t>(~p[0]);
  EXPECT_EQ(s.acquire(2).data(1)[0], p[0]);
  s.acquire(3);  // resident in the cache, not fixed
  STRATA_EXPECT_ERROR(s.fixed_data(3, 0), "item 3 is not fixed in DRAM");
  STRATA_EXPECT_ERROR(s.fixed_data(99, 0), "item 99 is not fixed in DRAM");
}

TEST(ExpertStore, BuffersFollowTheMemoryOptions) {
  // Two items of 3 MiB (mapped buffers: 4 MiB each): item 0 fixed, item 1 cached.
  test::ScratchDir dir("store-memory");
  const uint64_t n = uint64_t{3} << 20;
  std::vector<uint8_t> data(2 * n);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31 + 7);
  test::write_bytes(dir / "big.bin", data);
  std::vector<StoreItem> items(2);
  items[0].ranges = {{0, 0, n}};
  items[1].ranges = {{0, n, n}};
  for (NumaPolicy pol : {NumaPolicy::Default, NumaPolicy::Interleave, NumaPolicy::Bind}) {
    SCOPED_TRACE(std::string(numa_policy_name(pol)));
    ExpertStoreOptions o = options(uint64_t{4} << 20);
    o.memory.numa = pol;
    o.memory.pin = true;
    const HostMemoryStats before = host_memory_stats();
    {
      ExpertStore s({dir / "big.bin"}, items, o);
      const uint32_t fixed[] = {0};
      s.fix(fixed);
      const ExpertStore::Pin p = s.acquire(1);
      EXPECT_EQ(std::memcmp(p.data(), data.data() + n, n), 0);
      const HostMemoryStats after = host_memory_stats();
      const uint64_t numa = (after.numa_placed_bytes - before.numa_placed_bytes) +
                            (after.numa_skipped_bytes - before.numa_skipped_bytes);
      EXPECT_EQ(numa, pol == NumaPolicy::Default ? 0u : uint64_t{8} << 20) << "both buffers under the store's policy";
      if (numa_node_count() == 1) {
        EXPECT_EQ(after.numa_placed_bytes, before.numa_placed_bytes);
      }
      if (host_pinning_available() && after.pin_failed_bytes == before.pin_failed_bytes) {
        EXPECT_EQ(after.pinned_bytes - before.pinned_bytes, uint64_t{4} << 20) << "the fixed item only";
      } else {
        EXPECT_EQ(after.pinned_bytes, before.pinned_bytes);
      }
    }
    EXPECT_EQ(host_memory_stats().pinned_now_bytes, before.pinned_now_bytes) << "unregistered with the store";
  }
}

// An item with its own NUMA node (a split run: the node computing it) is bound there whatever
// the store's policy; with one node here the binding is counted as left to the kernel.
TEST(ExpertStore, ItemsWithANodeAreBoundToIt) {
  test::ScratchDir dir("store-node");
  const uint64_t n = uint64_t{3} << 20;
  std::vector<uint8_t> data(2 * n, 7);
  test::write_bytes(dir / "big.bin", data);
  std::vector<StoreItem> items(2);
  items[0].ranges = {{0, 0, n}};
  items[1].ranges = {{0, n, n}};
  items[1].numa_node = 0;
  ExpertStoreOptions o = options(uint64_t{8} << 20);
  o.memory.numa = NumaPolicy::Default;
  o.memory.pin = false;
  const HostMemoryStats before = host_memory_stats();
  ExpertStore s({dir / "big.bin"}, items, o);
  { const ExpertStore::Pin p = s.acquire(0); }
  HostMemoryStats after = host_memory_stats();
  EXPECT_EQ(after.numa_placed_bytes + after.numa_skipped_bytes, before.numa_placed_bytes + before.numa_skipped_bytes)
      << "item 0 follows the store's policy (local: not placed)";
  { const ExpertStore::Pin p = s.acquire(1); }
  after = host_memory_stats();
  EXPECT_EQ((after.numa_placed_bytes - before.numa_placed_bytes) + (after.numa_skipped_bytes - before.numa_skipped_bytes),
            uint64_t{4} << 20)
      << "item 1 bound to node 0 (placed, or skipped on a one-node machine)";
}

TEST(ExpertStore, FixingAnItemInUseIsAnError) {
  Fixture f;
  ExpertStore s(f.files, f.items, options(2 * 12288));
  const auto pin = s.acquire(1);
  const uint32_t fixed[] = {1};
  STRATA_EXPECT_ERROR(s.fix(fixed), "item 1 is in use");
  EXPECT_TRUE(f.same(pin, 1));
}

TEST(ExpertStore, FixingAnUnreadableItemFailsWithItsFile) {
  Fixture f;
  ExpertStoreOptions o = options(12288);
  o.io.fault = [](uint32_t file, uint64_t off, uint32_t len, int res) {
    return file == 1 && off <= 6007 && 9006 < off + len ? -EIO : res;
  };
  ExpertStore s(f.files, f.items, o);
  const uint32_t fixed[] = {2};
  STRATA_EXPECT_ERROR(s.fix(fixed), "b.bin");
  EXPECT_FALSE(s.resident(2));
  EXPECT_EQ(s.stats().fixed_bytes, 0u);
}

TEST(ExpertStore, BadItemsAreRejectedAtConstruction) {
  Fixture f;
  auto items = f.items;
  items[4].ranges[1].offset = f.b.size() - 10;
  STRATA_EXPECT_ERROR(ExpertStore(f.files, items, options(1 << 20)), "b.bin", "store item 4", "passes the end");
  STRATA_EXPECT_ERROR(ExpertStore(f.files, f.items, options(12287)), "item 0", "more than the whole DRAM cache budget");
  STRATA_EXPECT_ERROR(ExpertStore({f.dir / "missing.bin"}, {}, options(1 << 20)), "missing.bin");
}

// The address space capped a little above what the process maps now (sanitizers map terabytes),
// so that a large buffer cannot be allocated; restored when it goes.
class AddressSpaceCap {
 public:
  explicit AddressSpaceCap(uint64_t headroom) {
    getrlimit(RLIMIT_AS, &old_);
    std::ifstream statm("/proc/self/statm");
    uint64_t pages = 0;
    statm >> pages;
    rlimit cap = old_;
    cap.rlim_cur = pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) + headroom;
    ok_ = statm && (old_.rlim_max == RLIM_INFINITY || cap.rlim_cur <= old_.rlim_max) && setrlimit(RLIMIT_AS, &cap) == 0;
  }
  ~AddressSpaceCap() { setrlimit(RLIMIT_AS, &old_); }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  bool ok_ = false;
};

TEST(ExpertStore, AFailedAllocationNamesTheItem) {
  // One 64 GiB item of a sparse file, its buffer past the address space left.
  test::ScratchDir dir("store-big");
  test::write_bytes(dir / "big.bin", std::vector<uint8_t>(16));
  std::filesystem::resize_file(dir / "big.bin", uint64_t{64} << 30);
  std::vector<StoreItem> items(2);
  items[0].ranges = {{0, 0, uint64_t{64} << 30}};
  items[0].name = "layers.3.ffn.experts.17";
  items[1].ranges = {{0, 0, 16}};
  ExpertStore s({dir / "big.bin"}, items, options(uint64_t{128} << 30));
  const AddressSpaceCap cap(uint64_t{16} << 30);
  if (!cap.ok()) GTEST_SKIP() << "cannot lower RLIMIT_AS here";
  STRATA_EXPECT_ERROR(s.acquire(0), "expert store", "64.00 GiB of host memory for layers.3.ffn.experts.17");
  EXPECT_FALSE(s.resident(0));
  const uint32_t fixed[] = {0};
  STRATA_EXPECT_ERROR(s.fix(fixed), "64.00 GiB of host memory for layers.3.ffn.experts.17");
  EXPECT_EQ(s.stats().fixed_bytes, 0u);
  EXPECT_TRUE(s.acquire(1));  // the store goes on serving the items it can hold
}

}  // namespace
}  // namespace strata
