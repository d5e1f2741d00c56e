// Matrix products of f32 activations with weights in their stored type. The weight is
// dequantized one row at a time into a thread-local buffer and applied to every token of the
// batch, so a batch reads each weight byte once. Rows are split across threads (oneTBB).
// Batches of gemm_min_batch() tokens and more go through oneDNN (cpu-kernels/gemm_onednn.h).
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_view.h"

namespace strata {

// y[t][r] = sum_c W[r0 + r][c] * x[t][c] for t < n, r < nr.  x: [n, ldx], y: [n, ldy].
void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                 int64_t ldy);
// All rows: y [n, w.rows] = x [n, w.cols] · Wᵀ.
inline void linear(const WeightView& w, const float* x, int64_t n, float* y) {
  linear_rows(w, 0, w.rows, x, n, w.cols, y, w.rows);
}

// The transposed product over a row range: y[t][c] = sum_r W[r0 + r][c] * x[t][r] for
// r < nr, c < cols.  x: [n, ldx] (nr used), y: [n, ldy] (cols written, overwritten).
void linear_t_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                   int64_t ldy);

// Scalar references (whole-matrix dequantize, f64 accumulation) for the tests.
void linear_rows_ref(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                     int64_t ldy);
void linear_t_rows_ref(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx,
                       float* y, int64_t ldy);

}  // namespace strata
