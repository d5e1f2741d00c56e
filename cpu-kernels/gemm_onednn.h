// Batched products through oneDNN: a panel of weight rows is dequantized (in parallel, by the
// row kernels) and multiplied by the whole batch with one oneDNN matmul, so a prefill-sized
// batch runs at GEMM speed instead of one dot product per (row, token). Weights stored in the
// type multiplied are read in place, with no panel.
//
// Two element types. BF16 (panels and activations rounded to bf16, sums in f32) where oneDNN
// has a BF16 matmul on this CPU — with AVX-512 BF16 (and AMX where present; on the README's
// AMX Xeon oneDNN's BF16 matmul measured 4620 GFLOP/s, the F32 panels 847–1143) — unless
// switched off; F32 otherwise, whose result equals the row-by-row path up to
// summation order (the model's prefill == decode invariant). BF16 rounding of both operands
// (8 significant bits) should give a product NMSE of about 1e-5 against the exact product;
// test_linear holds it under 1e-4 and prints it where it runs.
// Primitives are created once per thread and shape and kept.
#pragma once

#include <cstdint>
#include <string>

#include "cpu-kernels/weight_view.h"

namespace strata {

// Batches at or above this many tokens take the oneDNN path in linear_rows (when the matrix
// is large enough to be worth it); STRATA_GEMM_MIN_BATCH overrides it (0 turns it off).
int64_t gemm_min_batch();

// Whether oneDNN has a BF16 x BF16 -> F32 matmul on this CPU (checked once); when not, *why
// says so.
bool gemm_bf16_available(std::string* why = nullptr);
// The BF16 switch: on by default; STRATA_GEMM_BF16=0 or set_gemm_bf16(false) (`--exact-dot` on
// the command line) keeps batched products in F32.
bool gemm_bf16_enabled();
void set_gemm_bf16(bool on);
// "bf16" or "f32": what the next batched product multiplies in.
const char* gemm_type_name();
// The BF16 GEMM's numbers on any CPU: when set, the F32 path multiplies operands rounded to
// bf16 first (activations and weight panels; weights are not read in place), as the BF16 matmul
// does, with sums in f32. Slower than either; for tests of the BF16 prefill path on CPUs
// without a BF16 matmul.
bool gemm_bf16_rounding();
void set_gemm_bf16_rounding(bool on);
class ScopedGemmBf16Rounding {
 public:
  explicit ScopedGemmBf16Rounding(bool on) : saved_(gemm_bf16_rounding()) { set_gemm_bf16_rounding(on); }
  ~ScopedGemmBf16Rounding() { set_gemm_bf16_rounding(saved_); }
  ScopedGemmBf16Rounding(const ScopedGemmBf16Rounding&) = delete;
  ScopedGemmBf16Rounding& operator=(const ScopedGemmBf16Rounding&) = delete;

 private:
  bool saved_;
};

class ScopedGemmBf16 {
 public:
  explicit ScopedGemmBf16(bool on) : saved_(gemm_bf16_enabled()) { set_gemm_bf16(on); }
  ~ScopedGemmBf16() { set_gemm_bf16(saved_); }
  ScopedGemmBf16(const ScopedGemmBf16&) = delete;
  ScopedGemmBf16& operator=(const ScopedGemmBf16&) = delete;

 private:
  bool saved_;
};

// y[t][r] = sum_c W[r0 + r][c] * x[t][c], as linear_rows, through oneDNN.
void linear_rows_onednn(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                        int64_t ldy);

// oneDNN primitives created by linear_rows_onednn so far (each thread keeps its own by shape),
// and its products whose weights oneDNN read in place (F32 weights in f32, BF16 in bf16: no
// panel to widen them into).
long gemm_primitives_created();
long gemm_in_place_products();
// Its calls, and those made from oneTBB worker threads (each of which brings its own OpenMP
// team: to be avoided).
long gemm_calls();
long gemm_calls_from_workers();

}  // namespace strata
