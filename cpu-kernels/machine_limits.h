// The machine's own limits, measured in the same run as a benchmark so that every figure can
// be printed next to the bound it is judged against.
#pragma once

#include <cstddef>
#include <string>

namespace strata {

// DRAM read bandwidth in GB/s: every thread sums its slice of a `bytes` buffer (touched
// first) with the widest vector loads of the dispatch level in effect, best of `repeats`
// passes. The load width matters: a core keeps only so many misses in flight, so 64-bit or
// 128-bit loads understate the limit (on a 2-core Zen 3 VM 27-31 GB/s, against 37-40 with
// 256-bit loads). Ten passes by default: on shared or virtual machines single passes spread
// by a quarter, and the limit is the best one.
double measure_read_bandwidth_gbps(size_t bytes = size_t{1} << 30, int repeats = 10);

// oneDNN matmul rate in GFLOP/s on an m x k x n problem, best of `repeats`: BF16 x BF16 -> F32
// where oneDNN has it on this CPU (AVX-512 and up), else F32 (type "f32", note says why).
struct GemmRate {
  double gflops = 0;
  std::string type;  // "bf16" | "f32"
  std::string note;
};
GemmRate measure_onednn_gemm(int m = 2048, int k = 2048, int n = 2048, int repeats = 3);

}  // namespace strata
