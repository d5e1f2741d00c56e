// A bounded DRAM cache of items read from weight files: a routed expert (its matrices and
// their block scales, several byte ranges) or a range of Engram rows. Items are read through
// RangeReaders (io_uring + O_DIRECT, or the pread pool) on background threads; acquire() pins
// an item in DRAM (reading it first when it is not there) and prefetch() starts reads ahead of
// use. Resident plus in-flight bytes never exceed the budget. When room is needed the item
// with the lowest frequency-with-decay score is evicted: each access adds 1 to an item's score
// and every tick() multiplies all scores by `decay` — recent and frequent items stay, a burst
// long past fades (plain LRU keeps the last few layers' experts and thrashes on a sweep).
// Pinned and in-flight items are never evicted. Knows byte ranges, not model math.
#pragma once

#include <cstdint>
#include <functional>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "memory-tier/host_memory.h"
#include "memory-tier/range_reader.h"

namespace strata {

struct StoreRange {
  uint32_t file = 0;  // index into the store's files
  uint64_t offset = 0;
  uint64_t length = 0;
};

// An item's ranges lie back to back in one DRAM buffer, each starting 64-byte aligned.
struct StoreItem {
  std::vector<StoreRange> ranges;
  // What it is, for messages ("layers.3.ffn.experts.17"); empty: "item N".
  std::string name;
  // The NUMA node (OS index) its buffer is bound to — the node whose threads compute it — or
  // -1: placed as ExpertStoreOptions::memory says.
  int numa_node = -1;
};

struct ExpertStoreOptions {
  uint64_t budget_bytes = 0;  // DRAM for resident + in-flight items (their aligned sizes)
  // What the store holds and the flag that sizes its budget, for messages.
  std::string what = "expert store", budget_flag = "--expert-cache-mb";
  double decay = 0.9;         // score multiplier per tick(), in (0, 1]
  uint64_t batch_bytes = 16ull << 20;  // most bytes one reading thread takes per batch
  int io_threads = 2;  // reading threads, each with its own ring: one fills while another drains
  RangeReaderOptions io;
  // Huge pages and NUMA placement of every buffer; page-locking (memory.pin) of fixed items
  // only: registering with the GPU driver costs too much for cache buffers freed on eviction.
  HostMemoryOptions memory;
};

struct ExpertStoreStats {
  uint64_t fixed_uses = 0;        // acquires of fixed items (placed in DRAM for good)
  uint64_t fixed_bytes_used = 0;  // their bytes, summed per use: DRAM-tier traffic
  uint64_t cached_bytes_used = 0; // bytes of cached items, summed per use
  uint64_t fixed_bytes = 0;       // DRAM held by fixed items (outside the cache budget)
  uint64_t hits = 0;        // acquire found a cached item resident
  uint64_t late = 0;        // acquire found it being read (prefetched, not yet complete)
  uint64_t misses = 0;      // acquire had to start the read
  uint64_t prefetched = 0;  // reads started by prefetch()
  uint64_t evictions = 0;
  uint64_t failures = 0;    // reads that failed
  uint64_t bytes_read = 0;  // bytes read from the files into the cache (fixed items not counted)
  uint64_t resident_bytes = 0, peak_bytes = 0;  // now and at most (resident + in flight)
  double stall_seconds = 0;  // time acquire() waited for reads
};

class ExpertStore {
 public:
  // Throws strata::Error when a file cannot be opened, a range lies outside its file, or an
  // item is larger than the whole budget (naming the item, its size and the budget).
  ExpertStore(const std::vector<std::filesystem::path>& files, std::vector<StoreItem> items,
              const ExpertStoreOptions& opts);
  ~ExpertStore();
  ExpertStore(const ExpertStore&) = delete;
  ExpertStore& operator=(const ExpertStore&) = delete;

  // Keeps an item resident while it lives.
  class Pin {
   public:
    Pin() = default;
    Pin(Pin&& o) noexcept;
    Pin& operator=(Pin&& o) noexcept;
    ~Pin();
    // The bytes of range r of the item.
    const uint8_t* data(size_t r = 0) const;
    explicit operator bool() const { return store_ != nullptr; }

   private:
    friend class ExpertStore;
    Pin(ExpertStore* s, uint32_t item, const uint8_t* base) : store_(s), item_(item), base_(base) {}
    void release();
    ExpertStore* store_ = nullptr;
    uint32_t item_ = 0;
    const uint8_t* base_ = nullptr;
  };

  // Returns the item resident and pinned, reading it first (and waiting) when needed. Throws
  // strata::Error naming file and offset when its read fails (a later acquire retries), or
  // naming the budget when every other byte of it is pinned.
  Pin acquire(uint32_t item);
  // Reads the items into DRAM for good (the DRAM tier of a placement): they are never evicted
  // and do not count against the cache budget. Waits for the reads; throws strata::Error
  // naming file and offset when one fails. progress hears each item read (done of total),
  // with the store's lock held: keep it short.
  void fix(std::span<const uint32_t> items, const std::function<void(size_t done, size_t total)>& progress = {});
  // The bytes of range r of a fixed item (fix()), writable: a fixed item is read once and never
  // again, so whoever placed it may rewrite it in place (the CPU's repacked layout,
  // runtime/backend/host_layout.h) before using it. Throws strata::Error for an item not fixed.
  uint8_t* fixed_data(uint32_t item, size_t r);
  // Starts reads of the items that are not resident, without waiting. Makes room only by
  // evicting unpinned items whose score is below the prefetched item's; items that do not fit
  // are skipped. Errors surface at acquire().
  void prefetch(std::span<const uint32_t> items);
  // One step of the decay clock (the runtime ticks once per decoded token).
  void tick();

  bool resident(uint32_t item) const;
  size_t size() const;  // number of items
  uint64_t item_bytes(uint32_t item) const;  // DRAM the item takes (its aligned ranges)
  uint64_t budget() const;
  ExpertStoreStats stats() const;
  // "io_uring (O_DIRECT)" or "pread (...reason)".
  std::string backend() const;

 private:
  struct State;
  void unpin(uint32_t item);
  std::unique_ptr<State> s_;
};

}  // namespace strata
