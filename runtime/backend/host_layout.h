// The CPU's own layout of weights it computes: K-quant (Q2_K to Q6_K) matrices repacked at load into the
// 16-row tiles its integer dots read one vector per load (cpu-kernels/tile_layout.h), held in
// DRAM the repacking allocates. Only for weights the CPU alone reads: a device copies weights
// as stored (its kernels know no tiled layout and refuse it by type).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "memory-tier/host_memory.h"
#include "runtime/backend/ops.h"

namespace strata {

// DRAM holding repacked matrices; the views it rewrote point into it while it lives.
class HostRepacked {
 public:
  HostRepacked() = default;
  ~HostRepacked();
  HostRepacked(HostRepacked&& o) noexcept;
  HostRepacked& operator=(HostRepacked&& o) noexcept;
  HostRepacked(const HostRepacked&) = delete;
  HostRepacked& operator=(const HostRepacked&) = delete;

  uint64_t bytes() const { return bytes_; }
  int64_t matrices() const { return matrices_; }

 private:
  friend HostRepacked repack_for_host(std::span<WeightView* const>, const HostMemoryOptions&, const std::string&);
  uint8_t* data_ = nullptr;
  uint64_t bytes_ = 0;
  int64_t matrices_ = 0;
};

// Repacks every matrix of `views` that has a tiled layout (the K-quants Q2_K to Q6_K, rows in 16s, columns in
// 256s) into one DRAM buffer, in parallel, and points those views at it; the others stay as
// they are. Throws strata::Error naming `what` when the DRAM cannot be had.
HostRepacked repack_for_host(std::span<WeightView* const> views, const HostMemoryOptions& mem, const std::string& what);
// The same for every matrix of the MLPs.
HostRepacked repack_for_host(std::span<Mlp* const> mlps, const HostMemoryOptions& mem, const std::string& what);

// The same in place, for matrices whose bytes the caller may rewrite (experts fixed in the
// expert store's DRAM): each matrix of mlps[i] that has a tiled layout is repacked into the
// buffer where it lies (at[i][k] for w1, w2, w3: its writable bytes) and its view pointed
// there; Q6_K, whose layout pads its blocks, stays as stored. Returns the matrices and bytes
// repacked.
struct RepackedCount {
  int64_t matrices = 0;
  uint64_t bytes = 0;
};
RepackedCount repack_in_place_for_host(std::span<Mlp* const> mlps, std::span<const std::array<uint8_t*, 3>> at);

}  // namespace strata
