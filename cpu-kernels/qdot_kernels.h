// Integer dot kernels (qdot.h), one table per instruction set; raw pointers only, so nothing
// compiled with wider instructions is shared across levels. Each call takes a range of weight
// rows and the tokens' activations (an ActQ8's arrays from the row's first column); per row,
// the tokens go kQDotTokens at a time through the kernel, which unpacks the row's blocks once
// for all of them, so a row stays in L1 for all its tokens. A token's result does not depend on
// which others share a kernel call (the same operations in the same order), so grouping never
// changes the numbers.
#pragma once

#include <cstdint>

namespace strata::kern {

// Tokens per pass over a row: kQDotTokens with 16 vector registers (AVX2), kQDotTokensWide
// with 32 (AVX-512 VNNI on 256-bit vectors: each token's accumulators stay in registers).
constexpr int kQDotTokens = 4;
constexpr int kQDotTokensWide = 8;

// One token's quantized activations (ActQ8's q, d, s, ds, qp for MXFP4, g and m for the
// K-quants, qk for the 512-bit Q4_K/Q5_K rows, q16 for the rows of IQ4_XS and of the 32-element
// blocks, qe for the MXFP4 tiles, qx for the rows of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS and IQ3_S on AVX-512
// VBMI; the quantizers write all but those four).
struct QTok {
  const int8_t* q;
  const float* d;
  const int16_t* s;
  const float* ds;
  const int8_t* qp;
  const float* g;
  const int16_t* m;
  const int8_t* qk;
  const int8_t* q16;
  const int8_t* qe;
  const int8_t* qx;
};

// Where a quantizer writes: ActQ8's arrays.
struct QOut {
  int8_t* q;
  float* d;
  int16_t* s;
  float* ds;
  int8_t* qp;
  float* g;
  int16_t* m;
};

// nr rows of n columns: row i's stored blocks at blocks + i · row_bytes, its E8M0 scales (MXFP4
// only, else null) at e8m0 + i · n / 32; nt tokens; row i of token t into out[t · stride + i].
using QDotFn = void (*)(const uint8_t* blocks, int64_t row_bytes, const uint8_t* e8m0, int64_t nr, const QTok* toks,
                        int64_t nt, int64_t n, float* out, int64_t stride);

// The loop every table entry runs: rows outer, groups of up to kGroup tokens inner;
// run(row, row_e8m0, toks, k, res) computes one group (k tokens) of one row.
// (Functions here are static: each instruction-set file keeps its own copy. A plain inline
// function left out of line is one shared copy, and the linker may keep the one compiled with
// AVX-512 for every caller; tests/checks/isa_objects.sh checks the objects.)
template <int kGroup = kQDotTokens, class Run>
static inline void qd_for_rows(const uint8_t* blocks, int64_t row_bytes, const uint8_t* e8m0, int64_t nr,
                               const QTok* toks, int64_t nt, int64_t n, float* out, int64_t stride, Run&& run) {
  for (int64_t i = 0; i < nr; ++i) {
    const uint8_t* row = blocks + i * row_bytes;
    const uint8_t* row_e8m0 = e8m0 ? e8m0 + i * (n / 32) : nullptr;
    for (int64_t t0 = 0; t0 < nt; t0 += kGroup) {
      const int k = static_cast<int>(nt - t0 < kGroup ? nt - t0 : kGroup);
      float res[kGroup];
      run(row, row_e8m0, toks + t0, k, res);
      for (int j = 0; j < k; ++j) out[(t0 + j) * stride + i] = res[j];
    }
  }
}

// Quantizes x[0..n) (n a multiple of 32) into an ActQ8's arrays (qdot.h): q[n], d[n / 32],
// s[n / 16], ds[n / 32], qp[n], g[ceil(n / 256)], m[n / 32]. Every level writes the same bytes
// (the same f32 products rounded to nearest even; tested), so the dot kernels see identical
// activations whatever the CPU.
using QuantFn = void (*)(const float* x, int64_t n, const QOut& out);

// The scales of one group of cnt <= 8 activation blocks from each block's max|x| (qdot.h):
// A = the largest; block k gets e_k, the largest e <= 6 with amax_k · 2^e <= A, and
// id[k] = 127 / A · 2^e_k (x · id[k] rounds to q), d[k] = A / 127 / 2^e_k, m[k] = 2^(6 - e_k).
// Returns g = A / 127. A group under 2^-100 gets zeros, one holding a NaN or an infinity
// (finite false) NaN scales; both get id 0 and e 0, and their q must be written as 0 (a
// block's max|x| may then differ between levels: a NaN is not ordered). Shared by every
// level, so that all compute the same floats.
static inline float group_scales(const float* amax, int cnt, bool finite, float* id, float* d, int16_t* m) {
  float a = 0;
  for (int k = 0; k < cnt; ++k) a = amax[k] > a ? amax[k] : a;
  const bool tiny = a < 0x1p-100f;
  const float g = !finite ? __builtin_nanf("") : tiny ? 0.0f : a / 127.0f;
  const float inv = !finite || tiny ? 0.0f : 127.0f / a;
  for (int k = 0; k < cnt; ++k) {
    int e = 0;
    while (finite && !tiny && e < 6 && amax[k] * static_cast<float>(2 << e) <= a) ++e;
    const auto p = static_cast<float>(1 << e);
    id[k] = inv * p;  // exact: a power of two
    d[k] = g / p;
    m[k] = static_cast<int16_t>(64 >> e);
  }
  return g;
}

struct QDotKernels {
  QDotFn q8_0, q4_0, q4_k, q5_k, q6_k, mxfp4;
  QDotFn q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, iq4_xs;
  QDotFn iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m;
  QuantFn quantize;
  // Tiles for batches (null where the level has none): 16 rows on AVX-512 VNNI
  // (qdot_tiles.inc), 8 on AVX2 (qdot_tiles_avx2.inc: every integer-dot type; on AVX-VNNI
  // by qdot_avxvnni.cpp); the same products as the row kernels up to f32 rounding, and as those,
  // independent of the other rows and tokens of a call.
  QDotFn q4_k_tiles = nullptr, q5_k_tiles = nullptr, q6_k_tiles = nullptr, q2_k_tiles = nullptr,
         q3_k_tiles = nullptr, q8_0_tiles = nullptr, iq4_xs_tiles = nullptr, mxfp4_tiles = nullptr;
  QDotFn q4_0_tiles = nullptr, q4_1_tiles = nullptr, q5_0_tiles = nullptr, q5_1_tiles = nullptr, iq4_nl_tiles = nullptr;
  QDotFn iq2_xxs_tiles = nullptr, iq2_xs_tiles = nullptr, iq2_s_tiles = nullptr, iq3_xxs_tiles = nullptr,
         iq3_s_tiles = nullptr, iq1_s_tiles = nullptr, iq1_m_tiles = nullptr;
  // The tiles over the tiled layouts (tile_layout.h: Q4_K_T16, Q5_K_T16, Q6_K_T16, Q2_K_T16,
  // Q3_K_T16), rows in whole tiles of 16; the same products as the stored types' tiles, bit for bit.
  QDotFn q4_k_t16_tiles = nullptr, q5_k_t16_tiles = nullptr, q6_k_t16_tiles = nullptr, q2_k_t16_tiles = nullptr,
         q3_k_t16_tiles = nullptr;
  // The lattice i-quants' blocks (n elements, whole super-blocks) as f32, bit for bit the scalar
  // dequantizer's, in the order IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M (null where
  // the level has none).
  using LatticeF32Fn = void (*)(const uint8_t* blocks, float* out, int64_t n);
  LatticeF32Fn lattice_f32[7] = {};
};

const QDotKernels& qdot_kernels_scalar();
const QDotKernels& qdot_kernels_avx2();
const QDotKernels& qdot_kernels_avxvnni();  // the AVX2 table with its tiles on AVX-VNNI
const QDotKernels& qdot_kernels_vnni();  // AVX-512 VNNI on 256-bit vectors
const QDotKernels& qdot_kernels_vbmi();  // the VNNI table with its lattice decoders on VBMI

}  // namespace strata::kern
