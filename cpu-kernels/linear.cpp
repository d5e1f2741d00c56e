#include "cpu-kernels/linear.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <vector>

#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"

namespace strata {
namespace {

// Enough rows per task that a task amortizes its scheduling; small matrices run inline.
int64_t grain(const WeightView& w, int64_t n) {
  const int64_t work_per_row = w.cols * (n > 0 ? n : 1);
  const int64_t g = (1 << 16) / (work_per_row > 0 ? work_per_row : 1);
  return g < 1 ? 1 : g;
}

}  // namespace

void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                 int64_t ldy) {
  const int64_t cols = w.cols;
  // Prefill-sized batches over a real matrix: dequantize panels and let oneDNN multiply.
  if (n >= gemm_min_batch() && nr * cols >= (int64_t{1} << 16)) {
    linear_rows_onednn(w, r0, nr, x, n, ldx, y, ldy);
    return;
  }
  // Integer weights at decode batch sizes: int8 activations against the stored blocks (qdot.h).
  if (int_dot_enabled() && qdot_supported(w.type)) {
    std::vector<ActQ8> acts(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) quantize_act_q8(x + t * ldx, cols, acts[static_cast<size_t>(t)]);
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, nr, grain(w, n)), [&](const tbb::blocked_range<int64_t>& rr) {
      for (int64_t r = rr.begin(); r < rr.end(); ++r)
        for (int64_t t = 0; t < n; ++t) y[t * ldy + r] = qdot_row(w, r0 + r, acts[static_cast<size_t>(t)]);
    });
    return;
  }
  // Types with a fused kernel (FP8): each row meets the activations straight from its bytes.
  if (has_fused_row_dot(w)) {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, nr, grain(w, n)), [&](const tbb::blocked_range<int64_t>& rr) {
      for (int64_t r = rr.begin(); r < rr.end(); ++r)
        for (int64_t t = 0; t < n; ++t) fused_row_dot(w, r0 + r, x + t * ldx, y[t * ldy + r]);
    });
    return;
  }
  // A row is dequantized in chunks that stay in L1 while every token of the batch uses them.
  constexpr int64_t kChunk = 1024;
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, nr, grain(w, n)), [&](const tbb::blocked_range<int64_t>& rr) {
    thread_local std::vector<float> chunk;
    chunk.resize(static_cast<size_t>(std::min(cols, kChunk)));
    for (int64_t r = rr.begin(); r < rr.end(); ++r) {
      for (int64_t t = 0; t < n; ++t) y[t * ldy + r] = 0;
      for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
        const int64_t nc = std::min(kChunk, cols - c0);
        dequant_row_range(w, r0 + r, c0, nc, chunk.data());
        for (int64_t t = 0; t < n; ++t) y[t * ldy + r] += dot_f32(chunk.data(), x + t * ldx + c0, nc);
      }
    }
  });
}

void linear_t_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                   int64_t ldy) {
  const int64_t cols = w.cols;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < cols; ++c) y[t * ldy + c] = 0;
  std::vector<float> row(static_cast<size_t>(cols));
  // Output columns are shared by all rows: accumulate serially (used on small per-head blocks).
  for (int64_t r = 0; r < nr; ++r) {
    dequant_row(w, r0 + r, row.data());
    for (int64_t t = 0; t < n; ++t) {
      const float xr = x[t * ldx + r];
      float* yt = y + t * ldy;
      for (int64_t c = 0; c < cols; ++c) yt[c] += xr * row[static_cast<size_t>(c)];
    }
  }
}

void linear_rows_ref(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                     int64_t ldy) {
  std::vector<float> m(static_cast<size_t>(nr * w.cols));
  dequantize_rows(w, r0, nr, m.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < nr; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(m[r * w.cols + c]) * x[t * ldx + c];
      y[t * ldy + r] = static_cast<float>(acc);
    }
}

void linear_t_rows_ref(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                       float* y, int64_t ldy) {
  std::vector<float> m(static_cast<size_t>(nr * w.cols));
  dequantize_rows(w, r0, nr, m.data());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < w.cols; ++c) {
      double acc = 0;
      for (int64_t r = 0; r < nr; ++r) acc += static_cast<double>(m[r * w.cols + c]) * x[t * ldx + r];
      y[t * ldy + c] = static_cast<float>(acc);
    }
}

}  // namespace strata
