#include "cpu-kernels/machine_limits.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <dnnl.hpp>
#include <string>
#include <memory>
#include <unordered_map>
#include <vector>

#include "cpu-kernels/row_dequant.h"

namespace strata {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

double measure_read_bandwidth_gbps(size_t bytes, int repeats) {
  const size_t n = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t s = tbb::parallel_reduce(
        tbb::blocked_range<size_t>(0, n, 1 << 16), uint64_t{0},
        [&](const tbb::blocked_range<size_t>& rr, uint64_t acc) {
          return acc + sum_u64(buf.get() + rr.begin(), static_cast<int64_t>(rr.size()));
        },
        [](uint64_t a, uint64_t b) { return a + b; });
    const double dt = seconds_since(t0);
    sink = sink + s;
    best = std::max(best, double(bytes) / dt / 1e9);
  }
  return best;
}

namespace {

// One oneDNN matmul of `type` inputs (F32 output); throws dnnl::error when this CPU has no
// implementation for the type.
double onednn_matmul_gflops(dnnl::memory::data_type type, int m, int k, int n, int repeats) {
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::desc a_md({m, k}, type, memory::format_tag::ab);
  const memory::desc b_md({k, n}, type, memory::format_tag::ab);
  const memory::desc c_md({m, n}, memory::data_type::f32, memory::format_tag::ab);
  const matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), eng);
  const matmul prim(pd);
  memory a(a_md, eng), b(b_md, eng), c(c_md, eng);
  if (type == memory::data_type::bf16) {
    std::fill_n(static_cast<uint16_t*>(a.get_data_handle()), size_t(m) * k, uint16_t{0x3f80});
    std::fill_n(static_cast<uint16_t*>(b.get_data_handle()), size_t(k) * n, uint16_t{0x3f80});
  } else {
    std::fill_n(static_cast<float*>(a.get_data_handle()), size_t(m) * k, 1.0f);
    std::fill_n(static_cast<float*>(b.get_data_handle()), size_t(k) * n, 1.0f);
  }
  const std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
  prim.execute(strm, args);  // warm-up
  strm.wait();
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    prim.execute(strm, args);
    strm.wait();
    best = std::max(best, 2.0 * m * k * n / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace

GemmRate measure_onednn_gemm(int m, int k, int n, int repeats) {
  try {
    return {onednn_matmul_gflops(dnnl::memory::data_type::bf16, m, k, n, repeats), "bf16", ""};
  } catch (const dnnl::error& e) {
    return {onednn_matmul_gflops(dnnl::memory::data_type::f32, m, k, n, repeats), "f32",
            std::string("oneDNN has no BF16 matmul on this CPU (") + e.what() + "); F32 rate instead"};
  }
}

}  // namespace strata
