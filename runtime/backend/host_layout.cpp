#include "runtime/backend/host_layout.h"

#include <tbb/parallel_for.h>

#include <utility>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/tile_layout.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"

namespace strata {

HostRepacked::~HostRepacked() {
  if (data_) host_free(data_, alloc_);
}

HostRepacked::HostRepacked(HostRepacked&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), alloc_(std::exchange(o.alloc_, 0)),
      matrices_(std::exchange(o.matrices_, 0)) {}

HostRepacked& HostRepacked::operator=(HostRepacked&& o) noexcept {
  if (this != &o) {
    if (data_) host_free(data_, alloc_);
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    alloc_ = std::exchange(o.alloc_, 0);
    matrices_ = std::exchange(o.matrices_, 0);
  }
  return *this;
}

HostRepacked repack_for_host(std::span<Mlp* const> mlps, const HostMemoryOptions& mem, const std::string& what) {
  struct Job {
    WeightView* view;
    uint64_t offset;
  };
  std::vector<Job> jobs;
  uint64_t total = 0;
  for (Mlp* m : mlps)
    for (WeightView* w : {&m->w1, &m->w2, &m->w3})
      if (can_tile(*w)) {
        jobs.push_back({w, total});
        total += (static_cast<uint64_t>(weight_data_bytes(*w)) + 63) / 64 * 64;  // the kernels' vectors stay aligned
      }
  HostRepacked r;
  if (jobs.empty()) return r;
  HostMemoryOptions o = mem;
  o.pin = false;  // the CPU's alone: no device copies from it
  try {
    r.data_ = static_cast<uint8_t*>(host_alloc(total, o));
  } catch (const Error& e) {
    throw Error(what + ": no DRAM for " + human_bytes(total) + " of repacked weights (" + e.what() +
                "); run without --repack to read them as stored");
  }
  r.alloc_ = total;
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

}  // namespace strata
