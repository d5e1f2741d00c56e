#include "runtime/backend/host_layout.h"

#include <tbb/parallel_for.h>

#include <atomic>
#include <stdexcept>
#include <utility>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/tile_layout.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"

namespace strata {

HostRepacked::~HostRepacked() {
  if (data_) host_free(data_, bytes_);
}

HostRepacked::HostRepacked(HostRepacked&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), matrices_(std::exchange(o.matrices_, 0)) {}

HostRepacked& HostRepacked::operator=(HostRepacked&& o) noexcept {
  if (this != &o) {
    if (data_) host_free(data_, bytes_);
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    matrices_ = std::exchange(o.matrices_, 0);
  }
  return *this;
}

HostRepacked repack_for_host(std::span<Mlp* const> mlps, const HostMemoryOptions& mem, const std::string& what) {
  std::vector<WeightView*> views;
  for (Mlp* m : mlps)
    for (WeightView* w : {&m->w1, &m->w2, &m->w3}) views.push_back(w);
  return repack_for_host(views, mem, what);
}

HostRepacked repack_for_host(std::span<WeightView* const> views, const HostMemoryOptions& mem, const std::string& what) {
  struct Job {
    WeightView* view;
    uint64_t offset;
  };
  std::vector<Job> jobs;
  uint64_t total = 0;
  for (WeightView* w : views)
    if (w->data && can_tile(*w)) {
      jobs.push_back({w, total});
      total += (static_cast<uint64_t>(tiled_data_bytes(*w)) + 63) / 64 * 64;  // the kernels' vectors stay aligned
    }
  HostRepacked r;
  if (jobs.empty()) return r;
  // More than the machine's DRAM cannot be held, and the kernel might grant it only to kill the
  // process later, while it writes: said now, by name.
  if (const uint64_t dram = physical_memory_bytes(); dram && total > dram)
    throw Error(what + ": the repacked weights take " + human_bytes(total) + ", more than this machine's " +
                human_bytes(dram) + " of DRAM; run without it (the memory map pages what does not fit)");
  HostMemoryOptions o = mem;
  o.pin = false;  // the CPU's alone: no device copies from it
  try {
    r.data_ = static_cast<uint8_t*>(host_alloc(total, o));
  } catch (const Error& e) {
    throw Error(what + ": no DRAM for " + human_bytes(total) + " of repacked weights (" + e.what() +
                "); run without --repack to read them as stored");
  }
  r.bytes_ = total;
  r.matrices_ = static_cast<int64_t>(jobs.size());
  uint8_t* base = r.data_;
  run_in_compute_arena([&] {
    tbb::parallel_for(size_t{0}, jobs.size(), [&](size_t i) {
      *jobs[i].view = repack_to_tiles(*jobs[i].view, base + jobs[i].offset);
    });
  });
  return r;
}

RepackedCount repack_in_place_for_host(std::span<Mlp* const> mlps, std::span<const std::array<uint8_t*, 3>> at) {
  if (mlps.size() != at.size()) throw std::invalid_argument("repack_in_place_for_host: one buffer set per MLP");
  std::atomic<int64_t> matrices{0};
  std::atomic<uint64_t> bytes{0};
  run_in_compute_arena([&] {
    tbb::parallel_for(size_t{0}, mlps.size(), [&](size_t i) {
      WeightView* views[3] = {&mlps[i]->w1, &mlps[i]->w2, &mlps[i]->w3};
      std::vector<uint8_t> copy;
      for (int k = 0; k < 3; ++k) {
        WeightView& w = *views[k];
        // Only where the layout takes no more than the stored bytes (not Q6_K's or Q3_K's padded blocks).
        if (!w.data || !at[i][static_cast<size_t>(k)] || !can_tile(w) || tiled_data_bytes(w) > weight_data_bytes(w))
          continue;
        const auto n = static_cast<size_t>(weight_data_bytes(w));
        copy.assign(at[i][static_cast<size_t>(k)], at[i][static_cast<size_t>(k)] + n);  // the stored rows, then
        WeightView stored = w;
        stored.data = copy.data();
        w = repack_to_tiles(stored, at[i][static_cast<size_t>(k)]);  // their tiles where they lay
        matrices += 1;
        bytes += n;
      }
    });
  });
  return {matrices.load(), bytes.load()};
}

}  // namespace strata
