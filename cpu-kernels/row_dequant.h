// One row of a weight as f32, and f32 dot products, at the dispatch level in effect
// (cpu_features.h). The lattice i-quants have a vector path only with AVX-512 VNNI (their
// decoders live with the integer dots, qdot.h); a type or row range without a vector kernel at
// the level in effect uses the scalar dequantizer. Both give the same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu-kernels/weight_view.h"

namespace strata {

// Row r of w into out[w.cols].
void dequant_row(const WeightView& w, int64_t r, float* out);
// Rows [r0, r0 + nr) of w into out[nr · w.cols], each as dequant_row gives it: where rows are
// whole blocks one after another (no separate scales, no tiled layout) in one call of the
// level's kernel, whose setup (constants, codebook tables) is then paid once, not once a row.
void dequant_rows(const WeightView& w, int64_t r0, int64_t nr, float* out);
// Columns [c0, c0 + nc) of row r into out[nc]; c0 a multiple of 256 (a whole number of blocks
// of every type), nc a whole number of blocks or the rest of the row.
void dequant_row_range(const WeightView& w, int64_t r, int64_t c0, int64_t nc, float* out);
float dot_f32(const float* a, const float* b, int64_t n);
// x[i] = e^x[i] for i < n: glibc's vector expf where the level has AVX2 (within 4 ulp of
// std::exp, measured 3 on [-87, 0]; NaN, infinities, overflow and underflow as std::exp),
// std::exp itself at the scalar level.
void exp_f32(float* x, int64_t n);
// The largest of x[0, n) (-inf for n = 0; NaN ignored) and the sum, each over 8 running lanes so
// the loops carry no chain through one register.
float max_f32(const float* x, int64_t n);
float sum_f32(const float* x, int64_t n);
// y[i] += a * x[i].
void axpy_f32(float a, const float* x, float* y, int64_t n);
// Attention's products for a block of nb <= 8 queries at the dispatch level (row_kernels.h):
// s[t · lds + k] = Σ_i q[t][i] · kt[i · ldk + k] for k < nk (nk a multiple of 16, kt's
// columns padded to it) and o[t · ldo + j] = Σ_k p[t · ldp + k] · v[k · ldv + j] for j < nv,
// each sum in the order of i (of k) with one FMA per product, whatever the level.
void attn_scores_f32(const float* const* q, int nb, const float* kt, int64_t ldk, int64_t d, int64_t nk, float* s,
                     int64_t lds);
void attn_pv_f32(const float* p, int64_t ldp, int nb, const float* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                 int64_t ldo);
// s[t · lds + k] = Σ_i q[t][i] · keys[k · ldk + i] + Σ_i q2[t][i] · keys2[k · ldk2 + i] for
// t < nb <= 8 and k < nk: scores against keys stored row-major in two parts (MLA's latent and
// rope caches), each key read once for the nb queries. The order of a sum follows the level's
// vector width (not the same bits at every level); d2 may be 0 (q2, keys2 unread).
void attn_scores_rows_f32(const float* const* q, const float* const* q2, int nb, const float* keys, int64_t ldk,
                          int64_t d, const float* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s, int64_t lds);
// attn_scores_rows_f32 over bf16 queries and keys (a bf16 KV cache), the products in bf16 pairs
// with f32 sums (vdpbf16ps), where the level has that (AVX-512 BF16) and d, d2 are multiples of
// 32; false otherwise (the caller widens the keys and takes attn_scores_rows_f32).
bool attn_scores_rows_bf16(const uint16_t* const* q, const uint16_t* const* q2, int nb, const uint16_t* keys,
                           int64_t ldk, int64_t d, const uint16_t* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s,
                           int64_t lds);
// Whether attn_scores_rows_bf16 serves rows of d and d2 elements at the level in effect.
bool has_attn_scores_rows_bf16(int64_t d, int64_t d2);
// attn_scores_f32 over bf16 queries and keys, the keys stored transposed in pairs of dimensions
// (kt[(i/2 · ldk + k) · 2 + i % 2] is key k's element i; d even, ldk and nk multiples of 16): the
// products in bf16 pairs with f32 sums (vdpbf16ps), where the level has that; false otherwise.
bool attn_scores_bf16(const uint16_t* const* q, int nb, const uint16_t* kt, int64_t ldk, int64_t d, int64_t nk,
                      float* s, int64_t lds);
// Whether attn_scores_bf16 serves keys of d elements at the level in effect.
bool has_attn_scores_bf16(int64_t d);
// o[t · ldo + j] = Σ_k bf16(p[t · ldp + k]) · v[k · ldv + j] for t < nb <= 8, j < nv, k < nk <=
// 256, over bf16 values (a bf16 KV cache): the weights rounded to bf16 as the products take them
// (vdpbf16ps, f32 sums), where the level has that and nv is a multiple of 32; false otherwise.
bool attn_pv_bf16(const float* p, int64_t ldp, int nb, const uint16_t* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                  int64_t ldo);
bool has_attn_pv_bf16(int64_t nv);
// y[c] = Σ_r x[r] · w[r0 + r][c] for r < nr, c < w.cols, without widening the rows in memory,
// where a vector kernel does that for w's type at the level in effect (the K-quants and IQ4_XS at
// AVX2 and AVX-512); false when there is none (the caller dequantizes each row and adds it).
bool fused_t_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, float* y);
// n floats rounded to bf16 (float_formats.h's f32_to_bf16, the same bits) at the level in effect.
void to_bf16_row(const float* src, uint16_t* dst, int64_t n);
// Σ p[i] (wrapping) for i < n, with the widest loads the level in effect has.
uint64_t sum_u64(const uint64_t* p, int64_t n);
// Row r of w · x[w.cols] without widening the row in memory, where a vector kernel does that
// for w's type at the level in effect (F32, BF16, F16, F8_E4M3 with block scales); false when
// there is none. x as fused_row_act returns it for w with the same `rounded` (a kernel may read
// activations in its own order). rounded: a kernel may multiply activations rounded to fewer
// bits, as the integer dots do (the FP8 dot of AVX-512 BF16 CPUs: to bf16,
// row_kernels_avx512bf16.cpp); otherwise every product is exact in f32.
bool fused_row_dot(const WeightView& w, int64_t r, const float* x, float& out, bool rounded = false);
// fused_row_dot for rows [r0, r0 + nr) and one token into out[(r - r0) · ldo], the same values;
// the checks and an FP8 row band's scales once for all the rows, not per row.
bool fused_row_dots(const WeightView& w, int64_t r0, int64_t nr, const float* x, float* out, int64_t ldo,
                    bool rounded = false);
// x[w.cols] as fused_row_dot reads it for w at the level in effect: x itself, or reordered
// (and, rounded, rounded) into buf. Once per product; every row uses it.
const float* fused_row_act(const WeightView& w, const float* x, std::vector<float>& buf, bool rounded = false);
// Whether fused_row_dot serves w at the level in effect (its type, and an FP8 row's length).
bool has_fused_row_dot(const WeightView& w);
// Whether it serves weights of this type at the level in effect (FP8: with block scales).
bool has_fused_row_dot(WeightType type, bool block_scaled);
// Whether the level in effect has a fused dot that reads w's row once for several tokens
// (FP8, BF16 and F16 on AVX2 and AVX-512); then fused_row_dot_tokens serves it.
bool has_fused_row_dot_tokens(const WeightView& w);
// The batch from which a product fused_row_dot_tokens serves with rounded activations should go
// to the GEMM instead, as the level in effect measured it; 0: no such figure (the usual batch).
int64_t fused_row_dot_tokens_gemm_from(const WeightView& w);
// Rows [r0, r0 + nr) of w · x[t] for t < nt into out[t · ldo + r - r0] (x[t] as fused_row_act
// returns it), each row read once for all the tokens; every value is what fused_row_dot gives
// that row and token alone, bit for bit. False where there is no such kernel.
bool fused_row_dot_tokens(const WeightView& w, int64_t r0, int64_t nr, const float* const* x, int nt,
                          float* out, int64_t ldo, bool rounded = false);

}  // namespace strata
