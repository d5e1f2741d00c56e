// Batched products through oneDNN: a panel of weight rows is dequantized to f32 (in parallel,
// by the row kernels) and multiplied by the whole batch with one oneDNN f32 matmul, so a
// prefill-sized batch runs at GEMM speed instead of one dot product per (row, token). F32,
// not BF16: the result equals the row-by-row path up to summation order (the model's
// prefill == decode invariant holds); BF16 inputs would round the activations.
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_view.h"

namespace strata {

// Batches at or above this many tokens take the oneDNN path in linear_rows (when the matrix
// is large enough to be worth it); STRATA_GEMM_MIN_BATCH overrides it (0 turns it off).
int64_t gemm_min_batch();

// y[t][r] = sum_c W[r0 + r][c] * x[t][c], as linear_rows, through oneDNN.
void linear_rows_onednn(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                        int64_t ldy);

}  // namespace strata
