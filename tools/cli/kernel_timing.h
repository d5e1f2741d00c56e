// Timing of expert-shaped matrix products for `strata bench kernels` and `strata tune`: a
// weight quantized to a type, spread over copies larger than the CPU caches, timed per call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu-kernels/weight_view.h"

namespace strata::cli {

struct Stored {
  std::vector<uint8_t> data, scale;
  WeightView view;
  uint64_t bytes = 0;
};

// src [rows, cols] stored as `type` (a GGUF type name, "fp8" or "mxfp4"), or as one of those
// repacked into its tiled layout (tile_layout.h) when the name ends in "_t16" ("q4_k_t16").
bool is_tiled_name(const std::string& type);
Stored quantize(const std::string& type, const std::vector<float>& src, int64_t rows, int64_t cols);

// Copies of one weight spanning more than any CPU cache: consecutive calls use different
// copies, so every call streams its weight from DRAM as a real expert would.
struct Copies {
  std::vector<std::vector<uint8_t>> data;
  std::vector<WeightView> views;
};
Copies spread(const Stored& w);

// Best seconds of one product of `batch` tokens (up to 20 calls or one second).
double time_linear(const Copies& w, const std::vector<float>& x, int64_t batch, std::vector<float>& y);

// The kernel's own speed, with no DRAM in the way: one token's product over the first rows of
// the weight (a multiple of 128, about 8 MiB of it), called again and again so those rows stay
// in the last-level cache. GB/s of weight bytes, best of up to 200 calls. When this is not well above the DRAM
// read bandwidth, the streamed product is bound by arithmetic, not by memory.
double in_cache_gbps(const Stored& w, const std::vector<float>& x);

// Where the integer-dot tiles (qdot.h: 16 rows with AVX-512 VNNI, 8 with AVX2) overtake the
// row kernels for this weight on this box: each of `batches` (ascending) timed both ways
// (time_linear), and min_batch the least of them from which the tiles took at most the rows'
// time there and at every larger one (twice the largest when they did not at the largest). No
// points when the weight's type has no tiles here or the integer dot is off.
struct TilesCrossover {
  struct Point {
    int64_t batch;
    double rows_s, tiles_s;
  };
  std::vector<Point> points;
  int64_t min_batch = 0;
};
TilesCrossover measure_tiles_crossover(const Copies& w, const std::vector<int64_t>& batches);

}  // namespace strata::cli
