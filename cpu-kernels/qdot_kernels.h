// Integer dot kernels (qdot.h), one table per instruction set; raw pointers only, so nothing
// compiled with wider instructions is shared across levels. Each call takes one weight row and
// up to kQDotTokens tokens' activations (an ActQ8's arrays from the row's first column) and
// writes one result per token: the row's blocks are unpacked once for all of them. A token's
// result does not depend on which others share the call (the same operations in the same
// order), so grouping never changes the numbers.
#pragma once

#include <cstdint>

namespace strata::kern {

constexpr int kQDotTokens = 4;

// One token's quantized activations (ActQ8's q, d, s, ds, and qp for MXFP4).
struct QTok {
  const int8_t* q;
  const float* d;
  const int16_t* s;
  const float* ds;
  const int8_t* qp;
};

// blocks: the row's stored blocks; e8m0: its scales (MXFP4 only, else unused); n: row length;
// nt: 1..kQDotTokens tokens; out[t] for each.
using QDotFn = void (*)(const uint8_t* blocks, const uint8_t* e8m0, const QTok* toks, int nt, int64_t n, float* out);

// Quantizes x[0..n) (n a multiple of 32) into an ActQ8's arrays: q[n], d[n / 32], s[n / 16],
// ds[n / 32], qp[n]. Every level writes the same bytes (round to nearest even of x · 127 /
// max|x| is exact in f32 arithmetic; tested), so the dot kernels see identical activations.
using QuantFn = void (*)(const float* x, int64_t n, int8_t* q, float* d, int16_t* s, float* ds, int8_t* qp);

struct QDotKernels {
  QDotFn q8_0, q4_0, q4_k, q5_k, q6_k, mxfp4;
  QuantFn quantize;
};

const QDotKernels& qdot_kernels_scalar();
const QDotKernels& qdot_kernels_avx2();
const QDotKernels& qdot_kernels_vnni();  // AVX-512 VNNI on 256-bit vectors

}  // namespace strata::kern
