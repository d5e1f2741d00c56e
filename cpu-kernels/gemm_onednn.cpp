#include "cpu-kernels/gemm_onednn.h"

#include <algorithm>
#include <cstdlib>
#include <dnnl.hpp>
#include <string>
#include <vector>

#include "cpu-kernels/row_dequant.h"

namespace strata {
namespace {

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

}  // namespace

int64_t gemm_min_batch() {
  static const int64_t v = [] {
    const char* e = std::getenv("STRATA_GEMM_MIN_BATCH");
    if (!e || !*e) return int64_t{16};
    const long long n = std::atoll(e);
    return n <= 0 ? INT64_MAX : static_cast<int64_t>(n);
  }();
  return v;
}

void linear_rows_onednn(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                        int64_t ldy) {
  using namespace dnnl;
  using dt = memory::data_type;
  const int64_t cols = w.cols;
  // Panels of f32 weights (STRATA_GEMM_PANEL_MB, default 64 MiB: a whole DeepSeek-V3 expert
  // matrix): few oneDNN calls, each large enough to keep every core busy.
  static const int64_t panel_bytes = [] {
    const char* e = std::getenv("STRATA_GEMM_PANEL_MB");
    const long long mb = e ? std::atoll(e) : 0;
    return (mb > 0 ? mb : 64) << 20;
  }();
  const int64_t panel = std::clamp<int64_t>(panel_bytes / (4 * cols), 16, nr);
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(panel * cols));
  thread_local stream strm(cpu_engine());
  float* const panel_buf = buf.data();  // the calling thread's buffer, filled by the workers
  for (int64_t p0 = 0; p0 < nr; p0 += panel) {
    const int64_t np = std::min(panel, nr - p0);
    // OpenMP, the threads oneDNN itself runs on: a oneTBB pool here would fight oneDNN's
    // spinning OpenMP threads for the cores between the two phases.
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t r = 0; r < np; ++r) dequant_row(w, r0 + p0 + r, panel_buf + r * cols);
    // src [n, cols] (row stride ldx) x weights [cols, np] (the panel, read transposed) ->
    // dst [n, np] (row stride ldy).
    const memory::desc src_md({n, cols}, dt::f32, memory::dims{ldx, 1});
    const memory::desc wei_md({cols, np}, dt::f32, memory::dims{1, cols});
    const memory::desc dst_md({n, np}, dt::f32, memory::dims{ldy, 1});
    const matmul::primitive_desc pd(matmul::desc(src_md, wei_md, dst_md), cpu_engine());
    memory src(src_md, cpu_engine(), const_cast<float*>(x)), wei(wei_md, cpu_engine(), panel_buf),
        dst(dst_md, cpu_engine(), y + p0);
    matmul(pd).execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }
}

}  // namespace strata
