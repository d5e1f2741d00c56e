// Matrix products of f32 activations with weights in their stored type. Small batches split
// rows across threads (oneTBB) and read each weight byte once per call: integer types and MXFP4
// meet int8-quantized activations (qdot.h; --exact-dot widens them instead), F32 / BF16 / F16 /
// FP8 rows of one or two tokens go through a fused dot (widened in registers only), anything
// else is widened a row chunk at a time and applied to every token. Batches of
// gemm_min_batch() tokens and more go through oneDNN (cpu-kernels/gemm_onednn.h).
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_view.h"

namespace strata {
struct ActQ8;  // qdot.h
}

namespace strata {

// Batch-invariant mode: every product takes the path one token alone would take (no oneDNN
// GEMM for large batches; the fused dot for any batch where one token takes it). Each of those
// paths gives a token the same bits whatever other tokens share the call, so a sequence's
// logits — and a request's greedy text — are the same alone and batched, exactly. Prefill is
// slower (no GEMM). Off by default; `--batch-invariant` on the command line.
bool batch_invariant();
void set_batch_invariant(bool on);

// Which kernel a product of n tokens over nr rows of w runs on, as chosen below.
enum class LinearPath { Gemm, IntDot, IntDotTiles, FusedDot, Rows };
LinearPath linear_path(const WeightView& w, int64_t nr, int64_t n);
const char* linear_path_name(LinearPath p);  // "gemm" | "int8" | "int8tiles" | "fused" | "rows"

// y[t][r] = sum_c W[r0 + r][c] * x[t][c] for t < n, r < nr.  x: [n, ldx], y: [n, ldy].
// q8: x's rows already quantized (q8[t]: row t, with the orders reads_q8() names; rows that
// several products read are then quantized once), or null.
void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                 int64_t ldy, const ActQ8* const* q8 = nullptr);
// Whether linear_rows over nr rows of w and n tokens reads quantized activations, and the
// orders (ActOrder) it reads.
bool reads_q8(const WeightView& w, int64_t nr, int64_t n, unsigned& orders);
// All rows: y [n, w.rows] = x [n, w.cols] · Wᵀ.
inline void linear(const WeightView& w, const float* x, int64_t n, float* y) {
  linear_rows(w, 0, w.rows, x, n, w.cols, y, w.rows);
}

// Two products over the same activations (an MLP's gate and up): ya [n, a.rows] = x · aᵀ and
// yb [n, b.rows] = x · bᵀ, a.cols == b.cols. Small batches run as one parallel job over both
// matrices' rows with the activations quantized once; the same results as two linear() calls.
// q8: x's rows already quantized (q8[t]: row t, with the orders pair_reads_q8() names; rows
// shared by several pairs are then quantized once), or null.
void linear_pair(const WeightView& a, const WeightView& b, const float* x, int64_t n, float* ya, float* yb,
                 const ActQ8* const* q8 = nullptr);
// The same for linear_pair over n tokens: the orders either product reads.
bool pair_reads_q8(const WeightView& a, const WeightView& b, int64_t n, unsigned& orders);

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
