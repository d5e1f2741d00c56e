#include "memory-tier/expert_store.h"

#include "memory-tier/host_memory.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include "runtime/common/activity.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"

namespace strata {
namespace {

constexpr uint64_t kRangeAlign = 64, kBufferAlign = 4096;
uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
enum class Status : uint8_t { Absent, Queued, Loading, Resident };

struct Slot {
  std::vector<uint64_t> range_at;  // offset of each range in the buffer
  uint64_t bytes = 0;              // aligned size of the buffer
  uint8_t* buf = nullptr;
  Status st = Status::Absent;
  int pins = 0, waiters = 0;
  bool protect = false;  // in the prefetch list being processed
  bool fixed = false;    // resident for good, outside the budget
  double score = 0;
  uint64_t stamp = 0;  // tick of the last score update
  std::string error;   // the last failed read, for its waiters
};

std::string item_name(const std::vector<StoreItem>& items, size_t i) {
  return items[i].name.empty() ? "item " + std::to_string(i) : items[i].name;
}

}  // namespace

struct ExpertStore::State {
  std::vector<std::filesystem::path> files;
  std::vector<StoreItem> items;
  std::vector<Slot> slots;
  ExpertStoreOptions opts;
  std::vector<std::unique_ptr<RangeReader>> readers;  // one per reading thread

  mutable std::mutex mu;
  std::condition_variable done;  // a read finished or a pin was released
  std::condition_variable work;
  std::deque<uint32_t> urgent, ahead;  // acquire()d first, then prefetch()ed
  std::vector<uint32_t> resident;      // eviction candidates are among these
  bool stop = false;
  uint64_t used = 0, tick = 0;
  ExpertStoreStats st;
  std::vector<std::thread> workers;

  double score(const Slot& s) const { return s.score * std::pow(opts.decay, static_cast<double>(tick - s.stamp)); }
  void bump(Slot& s) {
    s.score = score(s) + 1;
    s.stamp = tick;
  }

  // Frees unpinned resident items, lowest score first, until `need` bytes fit. With a limit,
  // only items scoring below it go. Returns whether the bytes fit.
  bool make_room(uint64_t need, double limit) {
    while (opts.budget_bytes - used < need) {
      size_t best = resident.size();
      double best_score = limit;
      for (size_t k = 0; k < resident.size(); ++k) {
        const Slot& s = slots[resident[k]];
        if (s.pins > 0 || s.waiters > 0 || s.protect) continue;
        const double sc = score(s);
        if (sc < best_score) best = k, best_score = sc;
      }
      if (best == resident.size()) return false;
      Slot& v = slots[resident[best]];
      host_free(v.buf, v.bytes);
      v.buf = nullptr;
      v.st = Status::Absent;
      used -= v.bytes;
      resident[best] = resident.back();
      resident.pop_back();
      ++st.evictions;
    }
    return true;
  }

  void start(uint32_t i, bool urgent_read) {
    Slot& s = slots[i];
    HostMemoryOptions mem = bound_to_node(opts.memory, items[i].numa_node);
    mem.pin = mem.pin && s.fixed;  // cache buffers come and go with evictions: not page-locked
    const std::string name = item_name(items, i);
    // An allocator that fails with std::bad_alloc instead names the item through the activity.
    const Activity doing("allocating the DRAM buffer of", name, static_cast<int64_t>(s.bytes), "bytes");
    try {
      s.buf = static_cast<uint8_t*>(host_alloc(s.bytes, mem));
    } catch (const Error& e) {
      throw Error(opts.what + ": " + e.what() + " for " + name);
    }
    if (s.fixed) {
      st.fixed_bytes += s.bytes;
    } else {
      used += s.bytes;
      st.peak_bytes = std::max(st.peak_bytes, used);
    }
    s.st = Status::Queued;
    s.error.clear();
    (urgent_read ? urgent : ahead).push_back(i);
    work.notify_one();
  }

  std::vector<ReadRequest> requests(uint32_t i) const {
    std::vector<ReadRequest> r;
    const Slot& s = slots[i];
    for (size_t k = 0; k < items[i].ranges.size(); ++k) {
      const StoreRange& g = items[i].ranges[k];
      r.push_back({g.file, g.offset, g.length, s.buf + s.range_at[k]});
    }
    return r;
  }

  void run(RangeReader& reader) {
    for (;;) {
      std::vector<uint32_t> batch;
      {
        std::unique_lock lk(mu);
        work.wait(lk, [&] { return stop || !urgent.empty() || !ahead.empty(); });
        if (stop) return;
        uint64_t bytes = 0;
        for (auto* q : {&urgent, &ahead})
          while (!q->empty() && (batch.empty() || bytes + slots[q->front()].bytes <= opts.batch_bytes)) {
            bytes += slots[q->front()].bytes;
            slots[q->front()].st = Status::Loading;
            batch.push_back(q->front());
            q->pop_front();
          }
      }
      std::vector<std::string> errors(batch.size());
      std::vector<ReadRequest> all;
      for (uint32_t i : batch) {
        auto r = requests(i);
        all.insert(all.end(), r.begin(), r.end());
      }
      try {
        reader.read(all);
      } catch (const std::exception&) {
        // Find which items failed; the others are complete.
        for (size_t k = 0; k < batch.size(); ++k) try {
            reader.read(requests(batch[k]));
          } catch (const std::exception& e) {
            errors[k] = e.what();
          }
      }
      std::lock_guard lk(mu);
      for (size_t k = 0; k < batch.size(); ++k) {
        Slot& s = slots[batch[k]];
        if (errors[k].empty()) {
          s.st = Status::Resident;
          if (!s.fixed) {
            resident.push_back(batch[k]);
            for (const StoreRange& g : items[batch[k]].ranges) st.bytes_read += g.length;
          }
        } else {
          host_free(s.buf, s.bytes);
          s.buf = nullptr;
          s.st = Status::Absent;
          (s.fixed ? st.fixed_bytes : used) -= s.bytes;
          s.error = errors[k];
          ++st.failures;
        }
      }
      done.notify_all();
    }
  }
};

ExpertStore::ExpertStore(const std::vector<std::filesystem::path>& files, std::vector<StoreItem> items,
                         const ExpertStoreOptions& opts)
    : s_(std::make_unique<State>()) {
  if (!(opts.decay > 0 && opts.decay <= 1)) throw Error("expert store: decay must be in (0, 1]");
  s_->files = files;
  s_->opts = opts;
  std::vector<uint64_t> sizes;
  for (const auto& f : files) {
    std::error_code ec;
    const uint64_t n = std::filesystem::file_size(f, ec);
    if (ec) throw_error({f.string(), "", -1}, "cannot read its size: " + ec.message());
    sizes.push_back(n);
  }
  s_->slots.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    Slot& s = s_->slots[i];
    for (const StoreRange& g : items[i].ranges) {
      if (g.file >= files.size()) throw Error("expert store: item " + std::to_string(i) + " names file #" +
                                              std::to_string(g.file) + " of " + std::to_string(files.size()));
      if (g.offset + g.length > sizes[g.file] || g.offset + g.length < g.offset)
        throw_error({files[g.file].string(), "", static_cast<int64_t>(g.offset)},
                    "store item " + std::to_string(i) + ": range of " + std::to_string(g.length) +
                        " bytes passes the end of the file (" + std::to_string(sizes[g.file]) + " bytes)");
      s.range_at.push_back(s.bytes);
      s.bytes += align_up(g.length, kRangeAlign);
    }
    s.bytes = align_up(std::max<uint64_t>(s.bytes, 1), kBufferAlign);
    if (s.bytes > opts.budget_bytes)
      throw Error(opts.what + ": " + item_name(items, i) + " takes " + human_bytes(s.bytes) +
                  ", more than the whole DRAM cache budget of " + human_bytes(opts.budget_bytes) + " (" +
                  opts.budget_flag + ")");
  }
  s_->items = std::move(items);
  for (int k = 0; k < std::max(1, opts.io_threads); ++k) s_->readers.push_back(RangeReader::open(files, opts.io));
  for (auto& r : s_->readers) s_->workers.emplace_back([this, reader = r.get()] { s_->run(*reader); });
}

ExpertStore::~ExpertStore() {
  {
    std::lock_guard lk(s_->mu);
    s_->stop = true;
  }
  s_->work.notify_all();
  for (std::thread& w : s_->workers) w.join();
  for (Slot& s : s_->slots) host_free(s.buf, s.bytes);
}

ExpertStore::Pin ExpertStore::acquire(uint32_t i) {
  State& S = *s_;
  if (i >= S.slots.size()) throw Error("expert store: no item " + std::to_string(i));
  std::unique_lock lk(S.mu);
  Slot& s = S.slots[i];
  if (s.fixed) {
    ++S.st.fixed_uses;
    S.st.fixed_bytes_used += s.bytes;
    ++s.pins;
    return Pin(this, i, s.buf);
  }
  S.bump(s);
  S.st.cached_bytes_used += s.bytes;
  if (s.st == Status::Resident) {
    ++S.st.hits;
  } else {
    if (s.st == Status::Absent) {
      ++S.st.misses;
      for (;;) {
        if (S.make_room(s.bytes, INFINITY)) break;
        const bool in_flight = std::any_of(S.slots.begin(), S.slots.end(), [](const Slot& o) {
                                 return o.st == Status::Queued || o.st == Status::Loading;
                               });
        if (!in_flight)
          throw Error(S.opts.what + ": cannot hold " + item_name(S.items, i) + " (" + human_bytes(s.bytes) +
                      "): the DRAM cache budget is " + human_bytes(S.opts.budget_bytes) + " and " + human_bytes(S.used) +
                      " of it is pinned");
        S.done.wait(lk);
        if (s.st != Status::Absent) break;  // read meanwhile (by another acquire)
      }
      if (s.st == Status::Absent) S.start(i, true);
    } else {
      ++S.st.late;
      // Move a prefetched item that has not started ahead of the others.
      if (s.st == Status::Queued)
        if (auto it = std::find(S.ahead.begin(), S.ahead.end(), i); it != S.ahead.end()) {
          S.ahead.erase(it);
          S.urgent.push_back(i);
        }
    }
    ++s.waiters;
    const auto t0 = std::chrono::steady_clock::now();
    S.done.wait(lk, [&] { return s.st == Status::Resident || (s.st == Status::Absent && !s.error.empty()); });
    S.st.stall_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    --s.waiters;
    if (s.st != Status::Resident) {
      const std::string what = s.error;
      if (s.waiters == 0) s.error.clear();
      throw Error(what);
    }
  }
  ++s.pins;
  return Pin(this, i, s.buf);
}

void ExpertStore::prefetch(std::span<const uint32_t> items) {
  State& S = *s_;
  std::lock_guard lk(S.mu);
  for (uint32_t i : items)
    if (i < S.slots.size()) S.slots[i].protect = true;
  for (uint32_t i : items) {
    if (i >= S.slots.size()) continue;
    Slot& s = S.slots[i];
    if (s.st != Status::Absent) continue;
    if (!S.make_room(s.bytes, S.score(s) + 1)) continue;
    S.start(i, false);
    ++S.st.prefetched;
  }
  for (uint32_t i : items)
    if (i < S.slots.size()) S.slots[i].protect = false;
}

void ExpertStore::fix(std::span<const uint32_t> items, const std::function<void(size_t, size_t)>& progress) {
  State& S = *s_;
  std::unique_lock lk(S.mu);
  std::vector<uint32_t> started;
  for (uint32_t i : items) {
    if (i >= S.slots.size()) throw Error("expert store: no item " + std::to_string(i));
    Slot& s = S.slots[i];
    if (s.fixed) continue;
    // A cached copy (or one being read) is dropped first: fixed items have their own buffer.
    S.done.wait(lk, [&] { return s.st == Status::Absent || s.st == Status::Resident; });
    if (s.pins > 0) throw Error("expert store: item " + std::to_string(i) + " is in use; fix items before use");
    if (s.st == Status::Resident) {
      host_free(s.buf, s.bytes);
      s.buf = nullptr;
      S.used -= s.bytes;
      S.resident.erase(std::find(S.resident.begin(), S.resident.end(), i));
      s.st = Status::Absent;
    }
    s.fixed = true;
    try {
      S.start(i, true);
    } catch (...) {
      s.fixed = false;  // no buffer: acquire() must not hand one out
      throw;
    }
    started.push_back(i);
  }
  size_t done = 0;
  for (uint32_t i : started) {
    Slot& s = S.slots[i];
    S.done.wait(lk, [&] { return s.st == Status::Resident || !s.error.empty(); });
    if (s.st != Status::Resident) {
      s.fixed = false;
      const std::string what = s.error;
      s.error.clear();
      throw Error(what);
    }
    if (progress) progress(++done, started.size());
  }
}

uint8_t* ExpertStore::fixed_data(uint32_t item, size_t r) {
  std::lock_guard lk(s_->mu);
  if (item >= s_->slots.size() || !s_->slots[item].fixed || s_->slots[item].st != Status::Resident)
    throw Error("expert store: " + (item < s_->items.size() ? item_name(s_->items, item) : "item " + std::to_string(item)) +
                " is not fixed in DRAM");
  const Slot& s = s_->slots[item];
  return s.buf + s.range_at.at(r);
}

void ExpertStore::tick() {
  std::lock_guard lk(s_->mu);
  ++s_->tick;
}

void ExpertStore::unpin(uint32_t i) {
  {
    std::lock_guard lk(s_->mu);
    --s_->slots[i].pins;
  }
  s_->done.notify_all();
}

bool ExpertStore::resident(uint32_t i) const {
  std::lock_guard lk(s_->mu);
  return i < s_->slots.size() && s_->slots[i].st == Status::Resident;
}
size_t ExpertStore::size() const { return s_->slots.size(); }
uint64_t ExpertStore::item_bytes(uint32_t i) const { return s_->slots.at(i).bytes; }
uint64_t ExpertStore::budget() const { return s_->opts.budget_bytes; }

ExpertStoreStats ExpertStore::stats() const {
  std::lock_guard lk(s_->mu);
  ExpertStoreStats r = s_->st;
  r.resident_bytes = s_->used;
  return r;
}

std::string ExpertStore::backend() const {
  const RangeReader& r = *s_->readers.front();
  std::string b = r.backend() + (r.direct() ? " (O_DIRECT)" : "");
  if (!r.fallback_reason().empty()) b += " (" + r.fallback_reason() + ")";
  return b + ", " + std::to_string(s_->readers.size()) + " reading threads";
}

ExpertStore::Pin::Pin(Pin&& o) noexcept : store_(o.store_), item_(o.item_), base_(o.base_) { o.store_ = nullptr; }
ExpertStore::Pin& ExpertStore::Pin::operator=(Pin&& o) noexcept {
  if (this != &o) {
    release();
    store_ = o.store_, item_ = o.item_, base_ = o.base_;
    o.store_ = nullptr;
  }
  return *this;
}
ExpertStore::Pin::~Pin() { release(); }
void ExpertStore::Pin::release() {
  if (store_) store_->unpin(item_);
  store_ = nullptr;
}
const uint8_t* ExpertStore::Pin::data(size_t r) const {
  return base_ + store_->s_->slots[item_].range_at.at(r);
}

}  // namespace strata
