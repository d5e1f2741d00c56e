// Vectorized row kernels, one table per instruction-set level. They see only raw pointers
// (no templates or inline library code is compiled with wider instructions than the CPU
// may have): per-block scales arrive as f32 computed by the caller. row_dequant.h
// dispatches to them; each is tested against the scalar dequantizers (dequant.h).
#pragma once

#include <cstdint>

namespace strata::kern {

struct RowKernels {
  void (*bf16)(const uint16_t* src, float* dst, int64_t n);
  void (*f16)(const uint16_t* src, float* dst, int64_t n);
  // Q8_0 blocks (f16 scale + 32 int8); n a multiple of 32.
  void (*q8_0)(const uint8_t* src, float* dst, int64_t n);
  // dst[i] = e4m3(src[i]) * scales[i / scale_every]  (FP8 E4M3 with block scales). E4M3 is
  // widened to f16 by shifting its bits (the value scaled by 2^-8, folded into the scale);
  // the NaN codes 0x7F/0xFF give NaN as the scalar twin does.
  void (*e4m3)(const uint8_t* src, const float* scales, int64_t scale_every, float* dst, int64_t n);
  // MXFP4: n/2 packed bytes (element 2k low nibble, 2k+1 high), one f32 scale per 32.
  void (*mxfp4)(const uint8_t* src, const float* scales, float* dst, int64_t n);
  // Q4_0 (n a multiple of 32) and Q4_K / Q5_K / Q6_K rows (n a multiple of 256), from their
  // blocks as stored (kquant_rows.inc).
  void (*q4_0)(const uint8_t* src, float* dst, int64_t n);
  void (*q4_k)(const uint8_t* src, float* dst, int64_t n);
  void (*q5_k)(const uint8_t* src, float* dst, int64_t n);
  void (*q6_k)(const uint8_t* src, float* dst, int64_t n);
  float (*dot)(const float* a, const float* b, int64_t n);
  // Σ e4m3(w[i]) * scales[i / scale_every] * x[i] without widening the row in memory; NaN when
  // any code is NaN (0x7F/0xFF), as the dequantizer then dot would give. x as e4m3_dot_order
  // leaves it (with the same `rounded`); scale_every a multiple of 32. rounded: the kernel may
  // multiply activations rounded to fewer bits (where it does, its file says how many);
  // otherwise the products are exact in f32.
  float (*e4m3_dot)(const uint8_t* w, const float* scales, int64_t scale_every, const float* x, int64_t n,
                    bool rounded);
  // Σ w[i] · x[i] for a BF16 / F16 row, widened in registers only (x in its own order).
  float (*bf16_dot)(const uint16_t* w, const float* x, int64_t n);
  float (*f16_dot)(const uint16_t* w, const float* x, int64_t n);
  // y[i] += a * x[i] (attention's weighted sum of values).
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // Σ p[i] (wrapping) for i < n, with the widest loads of the level into independent
  // accumulators: the DRAM read-bandwidth probe (machine_limits.h).
  uint64_t (*sum_u64)(const uint64_t* p, int64_t n);
  // The activations x[n] in the order (and, rounded, the precision) e4m3_dot reads them, into
  // xp; null: as they are.
  void (*e4m3_dot_order)(const float* x, int64_t n, float* xp, bool rounded);
  // Floats e4m3_dot_order writes for n activations; null: n.
  int64_t (*e4m3_dot_act_floats)(int64_t n, bool rounded);
  // The lower-bit GGUF formats from their blocks as stored (lowbit_rows.inc): Q4_1, Q5_0,
  // Q5_1, IQ4_NL rows of n a multiple of 32; Q2_K, Q3_K, IQ4_XS of n a multiple of 256.
  void (*q4_1)(const uint8_t* src, float* dst, int64_t n);
  void (*q5_0)(const uint8_t* src, float* dst, int64_t n);
  void (*q5_1)(const uint8_t* src, float* dst, int64_t n);
  void (*q2_k)(const uint8_t* src, float* dst, int64_t n);
  void (*q3_k)(const uint8_t* src, float* dst, int64_t n);
  void (*iq4_nl)(const uint8_t* src, float* dst, int64_t n);
  void (*iq4_xs)(const uint8_t* src, float* dst, int64_t n);
  // e4m3_dot for nr rows (ldw bytes apart, sharing their scales) and nt tokens, each row read
  // once for all of them (xp[t]: token t's activations as e4m3_dot_order leaves them): out[t ·
  // ldo + r] equals e4m3_dot's for row r and token t, bit for bit. Null where the level has none
  // (then each row and token takes e4m3_dot).
  void (*e4m3_dot_tokens)(const uint8_t* w, int64_t ldw, int nr, const float* scales, int64_t scale_every,
                          const float* const* xp, int nt, int64_t n, bool rounded, float* out, int64_t ldo);
  // n floats rounded to bf16 as float_formats.h's f32_to_bf16 does, bit for bit (bf16_rows.inc).
  void (*to_bf16)(const float* src, uint16_t* dst, int64_t n);
  // Attention's products for nb <= 8 queries (attention_rows.inc; null: attention.h's scalar
  // twins): s[t · lds + k] = Σ_i q[t][i] · kt[i · ldk + k] for k < nk (nk a multiple of 16,
  // kt's columns padded to it), and o[t · ldo + j] = Σ_k p[t · ldp + k] · v[k · ldv + j] for
  // j < nv. Sums in the order of i (of k), one FMA each.
  void (*attn_scores)(const float* const* q, int nb, const float* kt, int64_t ldk, int64_t d, int64_t nk, float* s,
                      int64_t lds) = nullptr;
  void (*attn_pv)(const float* p, int64_t ldp, int nb, const float* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                  int64_t ldo) = nullptr;
  // x[i] = e^x[i]: glibc's vector expf (libmvec), within 4 ulp of std::exp.
  void (*exp)(float* x, int64_t n) = nullptr;
  // s[t · lds + k] = q[t] · keys[k · ldk] (d) + q2[t] · keys2[k · ldk2] (d2) for t < nb <= 8,
  // k < nk, d and d2 multiples of the level's vector width: scores against keys stored row-major
  // in two parts (attention_rows.inc; null: row_dequant.cpp's scalar twin).
  void (*attn_scores_rows)(const float* const* q, const float* const* q2, int nb, const float* keys, int64_t ldk,
                           int64_t d, const float* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s,
                           int64_t lds) = nullptr;
  // attn_scores_rows over bf16 queries and keys (d, d2 multiples of 32): vdpbf16ps products,
  // f32 sums (AVX-512 BF16 CPUs; null elsewhere).
  void (*attn_scores_rows_bf16)(const uint16_t* const* q, const uint16_t* const* q2, int nb, const uint16_t* keys,
                                int64_t ldk, int64_t d, const uint16_t* keys2, int64_t ldk2, int64_t d2, int64_t nk,
                                float* s, int64_t lds) = nullptr;
  // s[t · lds + k] = Σ_i q[t][i] · key k's element i for t < nb <= 8, k < nk (a multiple of 16),
  // i < d (even), over bf16 queries and keys stored transposed in pairs (kt[(i/2 · ldk + k) · 2 +
  // i % 2]): vdpbf16ps, f32 sums (AVX-512 BF16 CPUs; null elsewhere).
  void (*attn_scores_bf16)(const uint16_t* const* q, int nb, const uint16_t* kt, int64_t ldk, int64_t d, int64_t nk,
                           float* s, int64_t lds) = nullptr;
  // o[t · ldo + j] = Σ_k bf16(p[t · ldp + k]) · v[k · ldv + j] for t < nb <= 8, j < nv (a
  // multiple of 32), nk <= kPvMaxKeys, over bf16 values: vdpbf16ps, f32 sums (AVX-512 BF16).
  void (*attn_pv_bf16)(const float* p, int64_t ldp, int nb, const uint16_t* v, int64_t ldv, int64_t nk, int64_t nv,
                       float* o, int64_t ldo) = nullptr;
  // bf16_dot / f16_dot for nr rows (ldw elements apart) and nt tokens, each row widened once for
  // all of them: out[t · ldo + r] equals the one-token dot's for row r and token t, bit for bit
  // (AVX2: a row by two tokens; AVX-512: four rows by two tokens).
  void (*bf16_dot_tokens)(const uint16_t* w, int64_t ldw, int nr, const float* const* x, int nt, int64_t n,
                          float* out, int64_t ldo) = nullptr;
  void (*f16_dot_tokens)(const uint16_t* w, int64_t ldw, int nr, const float* const* x, int nt, int64_t n,
                         float* out, int64_t ldo) = nullptr;
  // The batch from which FP8 products with rounded activations leave e4m3_dot_tokens for the
  // GEMM (whose panels widen the whole matrix first); 0: the usual GEMM batch.
  int64_t e4m3_tokens_gemm_from = 0;
  // y[c] = Σ_r x[r] · W[r][c] for nr rows of `cols` (a multiple of 256), row_bytes apart: the
  // transposed product without widening rows in memory, per type (kquant_t_rows.inc,
  // kquant_t_rows_avx2.inc; null: dequantize each row, axpy).
  using TRowsFn = void (*)(const uint8_t* w, int64_t row_bytes, int64_t nr, const float* x, float* y,
                           int64_t cols);
  struct TRows {
    TRowsFn q4_k = nullptr, q5_k = nullptr, q6_k = nullptr, q2_k = nullptr, q3_k = nullptr, iq4_xs = nullptr;
  };
  TRows t_rows{};
};

// The most keys one attn_pv_bf16 call takes.
constexpr int64_t kPvMaxKeys = 256;

const RowKernels& row_kernels_avx2();
const RowKernels& row_kernels_avx512();
// The AVX-512 table with the FP8 dot of AVX-512 BF16 + VBMI CPUs (row_kernels_avx512bf16.cpp).
const RowKernels& row_kernels_avx512bf16();

}  // namespace strata::kern
