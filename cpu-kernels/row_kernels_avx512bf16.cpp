// The FP8 (E4M3) row dot for CPUs with AVX-512 BF16 and VBMI (compiled with those flags; see
// CMakeLists.txt): the AVX-512 table with e4m3_dot and its activation order replaced.
//
// Every E4M3 magnitude (7 bits: 128 codes, subnormals included) is exactly a bf16, so a 64-code
// step builds its 64 bf16 weights with two vpermi2b lookups (low and high bytes from 128-entry
// tables), puts the sign bit back with one vpternlogd and interleaves the bytes into words; then
// vdpbf16ps multiplies them with the activations, prepared once per product as bf16:
// - rounded (the default decode path, as the integer dots' int8 activations are): each
//   activation rounded to the nearest bf16, 8 significant bits, a relative step of at most
//   2^-9 (product NMSE ~1e-6 on Gaussian data, against ~5e-5 for the int8 activations);
// - exact (`--exact-dot`): split into three bf16 parts, x = hi + mid + lo (each the rounded
//   rest of the one before; 3 × 8 significant bits hold an f32's 24), so every product w·part
//   is exact in f32 and the dot equals dequantize-then-dot up to the order of f32 sums. Four
//   more vdpbf16ps per 64-code step (six against two): measured at 55-75% of the rounded speed.
// vdpbf16ps treats bf16 subnormals as zero: activation parts below 2^-126 count as zero. A NaN
// code (0x7F/0xFF) is NaN in the table, so the row's product is NaN as the dequantizer's would
// be; a NaN activation stays NaN.
#include <immintrin.h>

#include <cstdint>

#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/row_kernels.h"

namespace strata::kern {
namespace {

// bf16 bits of the E4M3 magnitude code c (0..127): normal codes move their exponent from bias 7
// to bias 127; subnormals (m · 2^-9) are normalized; 0x7F is NaN.
constexpr uint16_t e4m3_bf16_bits(int c) {
  const int e = c >> 3, m = c & 7;
  if (c == 0x7F) return 0x7FC0;
  if (e != 0) return static_cast<uint16_t>(((e + 120) << 7) | (m << 4));
  if (m == 0) return 0;
  const int p = m >= 4 ? 2 : m >= 2 ? 1 : 0;  // m in [2^p, 2^(p+1))
  return static_cast<uint16_t>(((118 + p) << 7) | ((m - (1 << p)) << (7 - p)));
}

struct Tables {
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t hi[128];
};

constexpr Tables make_tables() {
  Tables t{};
  for (int c = 0; c < 128; ++c) {
    t.lo[c] = static_cast<uint8_t>(e4m3_bf16_bits(c) & 0xFF);
    t.hi[c] = static_cast<uint8_t>(e4m3_bf16_bits(c) >> 8);
  }
  return t;
}

constexpr Tables kTables = make_tables();

// Per 64 activations and part: 32 words for the low unpack, 32 for the high.
constexpr int64_t kPartWords = 64;
int parts(bool rounded) { return rounded ? 1 : 3; }

float code_value(uint8_t c) {
  const uint32_t bits = (static_cast<uint32_t>(kTables.hi[c & 0x7F]) << 24) |
                        (static_cast<uint32_t>(kTables.lo[c & 0x7F]) << 16) | (static_cast<uint32_t>(c & 0x80) << 24);
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

int64_t act_floats(int64_t n, bool rounded) { return n / 64 * (parts(rounded) * kPartWords / 2) + n % 64; }

// Activation i as the prepared buffer holds it: the sum of its parts in a full step, the f32
// itself in the tail.
float act_at(const float* xp, int64_t n, int64_t i, int np) {
  const int64_t full = n / 64 * 64;
  if (i >= full) return xp[full / 64 * np * kPartWords / 2 + (i - full)];
  const auto* words = reinterpret_cast<const uint16_t*>(xp) + i / 64 * np * kPartWords;
  const int64_t j = i % 64, word = (j / 16) * 8 + (j % 8) + (j % 16 >= 8 ? 32 : 0);
  float s = 0;
  for (int p = 0; p < np; ++p) {
    const uint32_t bits = static_cast<uint32_t>(words[p * kPartWords + word]) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    s += f;
  }
  return s;
}

// The layout e4m3_dot reads: for each full 64-activation step, its parts (hi; or hi, mid, lo),
// each as the two word vectors vpunpcklbw / vpunpckhbw of the codes produce (128-bit lane k of
// the low one holds activations 16k..16k+7, of the high one 16k+8..16k+15); then the tail as f32.
// Each part is the nearest bf16 of what the parts before it left (integer round to nearest
// even on the f32 bits; NaN kept as NaN).
void e4m3_dot_order(const float* x, int64_t n, float* xp, bool rounded) {
  alignas(64) uint16_t pair[32], lane_lo[32], lane_hi[32];
  for (int k = 0; k < 32; ++k) {
    pair[k] = static_cast<uint16_t>(2 * k + 1);  // the high words of 32 floats in two vectors
    lane_lo[k] = static_cast<uint16_t>(16 * (k / 8) + k % 8);
    lane_hi[k] = static_cast<uint16_t>(16 * (k / 8) + 8 + k % 8);
  }
  const __m512i pick_pair = _mm512_load_si512(pair), pick_lo = _mm512_load_si512(lane_lo),
                pick_hi = _mm512_load_si512(lane_hi), top = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)),
                half = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1),
                qnan = _mm512_set1_epi32(0x7FC00000);
  const int np = parts(rounded);
  auto* out = reinterpret_cast<uint16_t*>(xp);
  const int64_t steps = n / 64;
  for (int64_t s = 0; s < steps; ++s) {
    __m512 v[4];
    for (int q = 0; q < 4; ++q) v[q] = _mm512_loadu_ps(x + s * 64 + 16 * q);
    for (int p = 0; p < np; ++p) {
      __m512i h[4];
      for (int q = 0; q < 4; ++q) {
        const __m512i u = _mm512_castps_si512(v[q]);
        const __m512i bias = _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
        h[q] = _mm512_and_si512(_mm512_add_epi32(u, bias), top);
        h[q] = _mm512_mask_mov_epi32(h[q], _mm512_cmp_ps_mask(v[q], v[q], _CMP_UNORD_Q), qnan);
        v[q] = _mm512_sub_ps(v[q], _mm512_castsi512_ps(h[q]));
      }
      const __m512i a = _mm512_permutex2var_epi16(h[0], pick_pair, h[1]);  // activations 0..31
      const __m512i b = _mm512_permutex2var_epi16(h[2], pick_pair, h[3]);  // 32..63
      uint16_t* o = out + (s * np + p) * kPartWords;
      _mm512_storeu_si512(o, _mm512_permutex2var_epi16(a, pick_lo, b));
      _mm512_storeu_si512(o + 32, _mm512_permutex2var_epi16(a, pick_hi, b));
    }
  }
  float* tail = xp + steps * np * kPartWords / 2;
  for (int64_t i = steps * 64; i < n; ++i) tail[i - steps * 64] = x[i];
}

float hsum(__m512 all) {
  const __m256 h8 = _mm256_add_ps(_mm512_extractf32x8_ps(all, 0), _mm512_extractf32x8_ps(all, 1));
  const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
  const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
}

__m512bh as_bf16(__m512i v) {
  __m512bh b;
  __builtin_memcpy(&b, &v, sizeof b);
  return b;
}

// R rows (ldw bytes apart, sharing their scales) times NT tokens into out[t · ldo + r], xp[t]
// as e4m3_dot_order leaves it for Parts (1: rounded, 3: exact): each 64-code step of a row is
// widened once for all the tokens and each token's activations are loaded once for all the
// rows, so a row is read once for the batch. A (row, token) sum takes the same operations in
// the same order whatever R and NT are (a row and a token alone get the same bits): per scale
// block one running vector per part, two products per 64-code step, then the block's sum times
// its scale added to the total. Steps of 64 codes inside each scale block (scale_every a
// multiple of 64 keeps every step inside one block; otherwise a block's codes go one by one).
template <int Parts, int R, int NT>
[[gnu::always_inline]] inline void e4m3_dot_parts(const uint8_t* w, int64_t ldw, const float* scales,
                                                  int64_t scale_every, const float* const* xp, int64_t n,
                                                  float* out, int64_t ldo) {
  const __m512i lo0 = _mm512_load_si512(kTables.lo), lo1 = _mm512_load_si512(kTables.lo + 64);
  const __m512i hi0 = _mm512_load_si512(kTables.hi), hi1 = _mm512_load_si512(kTables.hi + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t full = n / 64 * 64;
  __m512 acc[R][NT];
  float rest[R][NT] = {};
#pragma GCC unroll 32
  for (int k = 0; k < R * NT; ++k) acc[k / NT][k % NT] = _mm512_setzero_ps();
  for (int64_t b0 = 0, block = 0; b0 < n; b0 += scale_every, ++block) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    __m512 a[R][NT][Parts];
#pragma GCC unroll 64
    for (int k = 0; k < R * NT * Parts; ++k)
      a[k / (NT * Parts)][k / Parts % NT][k % Parts] = _mm512_setzero_ps();
    int64_t i = b0;
    if (b0 % 64 == 0)
      for (; i + 64 <= b1 && i + 64 <= full; i += 64) {
        __m512i w0[R], w1[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          // kPrefetchAhead bytes on in the row; where the row ends before that, the same column
          // of the next block of R rows (what this row's stream reads next).
          if (R == 1 || i + 64 + kPrefetchAhead <= n) prefetch_ahead<2>(w + r * ldw + i);
          else __builtin_prefetch(w + (r + R) * ldw + i, 0, 2);
          const __m512i c = _mm512_loadu_si512(w + r * ldw + i);
          const __m512i lo = _mm512_permutex2var_epi8(lo0, c, lo1);
          // hi | (c & sign)
          const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, c, hi1), c, sign, 0xF8);
          w0[r] = _mm512_unpacklo_epi8(lo, hi), w1[r] = _mm512_unpackhi_epi8(lo, hi);
        }
        const int64_t at = i / 64 * Parts * kPartWords;
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const uint16_t* x = reinterpret_cast<const uint16_t*>(xp[t]) + at;
#pragma GCC unroll 3
          for (int p = 0; p < Parts; ++p) {
            const __m512bh x0 = as_bf16(_mm512_loadu_si512(x + p * kPartWords));
            const __m512bh x1 = as_bf16(_mm512_loadu_si512(x + p * kPartWords + 32));
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r)
              a[r][t][p] =
                  _mm512_dpbf16_ps(_mm512_dpbf16_ps(a[r][t][p], as_bf16(w0[r]), x0), as_bf16(w1[r]), x1);
          }
        }
      }
    const __m512 scale = _mm512_set1_ps(scales[block]);
#pragma GCC unroll 32
    for (int k = 0; k < R * NT; ++k) {
      const int r = k / NT, t = k % NT;
      __m512 part = a[r][t][0];
#pragma GCC unroll 3
      for (int j = 1; j < Parts; ++j) part = _mm512_add_ps(part, a[r][t][j]);
      acc[r][t] = _mm512_fmadd_ps(part, scale, acc[r][t]);
    }
    if (i < b1)
      for (int r = 0; r < R; ++r)
        for (int t = 0; t < NT; ++t)
          for (int64_t j = i; j < b1; ++j)
            rest[r][t] += code_value(w[r * ldw + j]) * scales[block] * act_at(xp[t], n, j, Parts);
  }
#pragma GCC unroll 32
  for (int k = 0; k < R * NT; ++k)
    out[k % NT * ldo + k / NT] = hsum(acc[k / NT][k % NT]) + rest[k / NT][k % NT];
}

float e4m3_dot(const uint8_t* w, const float* scales, int64_t scale_every, const float* xp, int64_t n, bool rounded) {
  float out;
  if (rounded)
    e4m3_dot_parts<1, 1, 1>(w, 0, scales, scale_every, &xp, n, &out, 1);
  else
    e4m3_dot_parts<3, 1, 1>(w, 0, scales, scale_every, &xp, n, &out, 1);
  return out;
}

// R rows for every token: groups of 8 tokens (rounded activations: one part each), then of 4,
// then the rest as one group.
template <int Parts, int R>
void e4m3_rows_tokens(const uint8_t* w, int64_t ldw, const float* scales, int64_t scale_every,
                      const float* const* xp, int nt, int64_t n, float* out, int64_t ldo) {
  int t = 0;
  if constexpr (Parts == 1)
    for (; t + 8 <= nt; t += 8)
      e4m3_dot_parts<Parts, R, 8>(w, ldw, scales, scale_every, xp + t, n, out + t * ldo, ldo);
  for (; t + 4 <= nt; t += 4)
    e4m3_dot_parts<Parts, R, 4>(w, ldw, scales, scale_every, xp + t, n, out + t * ldo, ldo);
  switch (nt - t) {
    case 1:
      return e4m3_dot_parts<Parts, R, 1>(w, ldw, scales, scale_every, xp + t, n, out + t * ldo, ldo);
    case 2:
      return e4m3_dot_parts<Parts, R, 2>(w, ldw, scales, scale_every, xp + t, n, out + t * ldo, ldo);
    case 3:
      return e4m3_dot_parts<Parts, R, 3>(w, ldw, scales, scale_every, xp + t, n, out + t * ldo, ldo);
    default:
      return;
  }
}

// Rounded activations two rows at a time (2 rows × 8 tokens of block sums in registers, one
// vector each: measured 100 -> 115 GMAC/s a core against 4 tokens, rows in cache), exact ones
// (three parts each) one row at a time.
void e4m3_dot_tokens(const uint8_t* w, int64_t ldw, int nr, const float* scales, int64_t scale_every,
                     const float* const* xp, int nt, int64_t n, bool rounded, float* out, int64_t ldo) {
  int r = 0;
  if (rounded)
    for (; r + 2 <= nr; r += 2)
      e4m3_rows_tokens<1, 2>(w + r * ldw, ldw, scales, scale_every, xp, nt, n, out + r, ldo);
  for (; r < nr; ++r) {
    if (rounded)
      e4m3_rows_tokens<1, 1>(w + r * ldw, ldw, scales, scale_every, xp, nt, n, out + r, ldo);
    else
      e4m3_rows_tokens<3, 1>(w + r * ldw, ldw, scales, scale_every, xp, nt, n, out + r, ldo);
  }
}

// Attention scores over a bf16 cache (row_kernels.h: attn_scores_rows_bf16): bf16 queries and
// keys, 32 elements a vdpbf16ps, f32 sums; 3 keys x 8 queries in registers as the f32 kernel.
template <int NQ, int NK>
void scores_bf16_blk(const uint16_t* const* q, const uint16_t* keys, int64_t ldk, int64_t d, const uint16_t* const* q2,
                     const uint16_t* keys2, int64_t ldk2, int64_t d2, float* s, int64_t lds) {
  __m512 acc[NQ][NK];
  for (int t = 0; t < NQ; ++t)
    for (int j = 0; j < NK; ++j) acc[t][j] = _mm512_setzero_ps();
  const auto part = [&](const uint16_t* const* qq, const uint16_t* kk, int64_t ld, int64_t n) {
    for (int64_t i = 0; i < n; i += 32) {
      __m512i kv[NK];
      for (int j = 0; j < NK; ++j) kv[j] = _mm512_loadu_si512(kk + j * ld + i);
      for (int t = 0; t < NQ; ++t) {
        const __m512i qv = _mm512_loadu_si512(qq[t] + i);
        for (int j = 0; j < NK; ++j) acc[t][j] = _mm512_dpbf16_ps(acc[t][j], as_bf16(qv), as_bf16(kv[j]));
      }
    }
  };
  part(q, keys, ldk, d);
  part(q2, keys2, ldk2, d2);
  for (int t = 0; t < NQ; ++t)
    for (int j = 0; j < NK; ++j) s[t * lds + j] = hsum(acc[t][j]);
}

template <int NQ>
void scores_bf16_nq(const uint16_t* const* q, const uint16_t* keys, int64_t ldk, int64_t d, const uint16_t* const* q2,
                    const uint16_t* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s, int64_t lds) {
  int64_t k = 0;
  for (; k + 3 <= nk; k += 3) scores_bf16_blk<NQ, 3>(q, keys + k * ldk, ldk, d, q2, keys2 + k * ldk2, ldk2, d2, s + k, lds);
  for (; k < nk; ++k) scores_bf16_blk<NQ, 1>(q, keys + k * ldk, ldk, d, q2, keys2 + k * ldk2, ldk2, d2, s + k, lds);
}

void attn_scores_rows_bf16(const uint16_t* const* q, const uint16_t* const* q2, int nb, const uint16_t* keys,
                           int64_t ldk, int64_t d, const uint16_t* keys2, int64_t ldk2, int64_t d2, int64_t nk, float* s,
                           int64_t lds) {
  switch (nb) {
    case 1: return scores_bf16_nq<1>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    case 2: return scores_bf16_nq<2>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    case 3: return scores_bf16_nq<3>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    case 4: return scores_bf16_nq<4>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    case 5: return scores_bf16_nq<5>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    case 6: return scores_bf16_nq<6>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    case 7: return scores_bf16_nq<7>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
    default: return scores_bf16_nq<8>(q, keys, ldk, d, q2, keys2, ldk2, d2, nk, s, lds);
  }
}

// Attention scores against bf16 keys stored transposed in pairs (row_kernels.h:
// attn_scores_bf16): per pair of dimensions, 16 keys' pairs in one vector and each query's pair
// broadcast, so one vdpbf16ps adds 32 products of a query and no sum crosses lanes.
template <int NB>
void scores_bf16_t_nb(const uint16_t* const* q, const uint16_t* kt, int64_t ldk, int64_t d, int64_t nk, float* s,
                      int64_t lds) {
  for (int64_t k0 = 0; k0 < nk; k0 += 16) {
    __m512 acc[NB];
    for (int t = 0; t < NB; ++t) acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 2) {
      const __m512i kv = _mm512_loadu_si512(kt + (i / 2 * ldk + k0) * 2);
      for (int t = 0; t < NB; ++t) {
        uint32_t w;
        __builtin_memcpy(&w, q[t] + i, sizeof w);
        acc[t] = _mm512_dpbf16_ps(acc[t], as_bf16(_mm512_set1_epi32(static_cast<int>(w))), as_bf16(kv));
      }
    }
    for (int t = 0; t < NB; ++t) _mm512_storeu_ps(s + t * lds + k0, acc[t]);
  }
}

void attn_scores_bf16(const uint16_t* const* q, int nb, const uint16_t* kt, int64_t ldk, int64_t d, int64_t nk,
                      float* s, int64_t lds) {
  switch (nb) {
    case 1: return scores_bf16_t_nb<1>(q, kt, ldk, d, nk, s, lds);
    case 2: return scores_bf16_t_nb<2>(q, kt, ldk, d, nk, s, lds);
    case 3: return scores_bf16_t_nb<3>(q, kt, ldk, d, nk, s, lds);
    case 4: return scores_bf16_t_nb<4>(q, kt, ldk, d, nk, s, lds);
    case 5: return scores_bf16_t_nb<5>(q, kt, ldk, d, nk, s, lds);
    case 6: return scores_bf16_t_nb<6>(q, kt, ldk, d, nk, s, lds);
    case 7: return scores_bf16_t_nb<7>(q, kt, ldk, d, nk, s, lds);
    default: return scores_bf16_t_nb<8>(q, kt, ldk, d, nk, s, lds);
  }
}

// f to bf16, to nearest, ties to even (float_formats.h's f32_to_bf16, written here so this
// instruction-set file shares no inline function with the others).
uint16_t round_bf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// The weighted sum over a bf16 cache (row_kernels.h: attn_pv_bf16): o[t][j] = Σ_k p[t][k] ·
// v[k][j] with p rounded to bf16. vdpbf16ps sums pairs along k, so two keys' rows are
// interleaved (unpacklo/hi: each 32-bit lane holds one column of both), multiplied by the pair
// (p[k], p[k+1]) broadcast, and the columns put back in order once at the end.
template <int NB>
void pv_bf16_nb(const float* p, int64_t ldp, const uint16_t* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                int64_t ldo) {
  // p's rows as bf16, padded to an even count: 32-bit word m holds (p[2m], p[2m + 1]).
  alignas(64) uint16_t pb[NB][kPvMaxKeys + 2];
  const int64_t pairs = (nk + 1) / 2;
  for (int t = 0; t < NB; ++t) {
    for (int64_t k = 0; k < nk; ++k) pb[t][k] = round_bf16(p[t * ldp + k]);
    pb[t][nk] = 0;
  }
  // unpacklo/hi leave, per 128-bit lane L, columns 8L..8L+3 in lo and 8L+4..8L+7 in hi.
  const __m512i first = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
  const __m512i second = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t j0 = 0; j0 < nv; j0 += 32) {
    __m512 lo[NB], hi[NB];
    for (int t = 0; t < NB; ++t) lo[t] = hi[t] = _mm512_setzero_ps();
    for (int64_t m = 0; m < pairs; ++m) {
      const __m512i a = _mm512_loadu_si512(v + 2 * m * ldv + j0);
      const __m512i b = 2 * m + 1 < nk ? _mm512_loadu_si512(v + (2 * m + 1) * ldv + j0) : zero;
      const __m512i il = _mm512_unpacklo_epi16(a, b), ih = _mm512_unpackhi_epi16(a, b);
      for (int t = 0; t < NB; ++t) {
        uint32_t w;
        __builtin_memcpy(&w, &pb[t][2 * m], sizeof w);
        const __m512i pw = _mm512_set1_epi32(static_cast<int>(w));
        lo[t] = _mm512_dpbf16_ps(lo[t], as_bf16(il), as_bf16(pw));
        hi[t] = _mm512_dpbf16_ps(hi[t], as_bf16(ih), as_bf16(pw));
      }
    }
    for (int t = 0; t < NB; ++t) {
      _mm512_storeu_ps(o + t * ldo + j0, _mm512_permutex2var_ps(lo[t], first, hi[t]));
      _mm512_storeu_ps(o + t * ldo + j0 + 16, _mm512_permutex2var_ps(lo[t], second, hi[t]));
    }
  }
}

void attn_pv_bf16(const float* p, int64_t ldp, int nb, const uint16_t* v, int64_t ldv, int64_t nk, int64_t nv, float* o,
                  int64_t ldo) {
  switch (nb) {
    case 1: return pv_bf16_nb<1>(p, ldp, v, ldv, nk, nv, o, ldo);
    case 2: return pv_bf16_nb<2>(p, ldp, v, ldv, nk, nv, o, ldo);
    case 3: return pv_bf16_nb<3>(p, ldp, v, ldv, nk, nv, o, ldo);
    case 4: return pv_bf16_nb<4>(p, ldp, v, ldv, nk, nv, o, ldo);
    case 5: return pv_bf16_nb<5>(p, ldp, v, ldv, nk, nv, o, ldo);
    case 6: return pv_bf16_nb<6>(p, ldp, v, ldv, nk, nv, o, ldo);
    case 7: return pv_bf16_nb<7>(p, ldp, v, ldv, nk, nv, o, ldo);
    default: return pv_bf16_nb<8>(p, ldp, v, ldv, nk, nv, o, ldo);
  }
}

}  // namespace

const RowKernels& row_kernels_avx512bf16() {
  static const RowKernels k = [] {
    RowKernels t = row_kernels_avx512();
    t.e4m3_dot = e4m3_dot;
    t.e4m3_dot_tokens = e4m3_dot_tokens;
    // `strata bench kernels --types fp8 --batch 16,24,32,48,64 --shapes v3` (Zen 5, STRATA_GEMM_MIN_BATCH
    // raised for the fused rows): fused 1.1-1.9 ms at 16-32 tokens against the GEMM's 2.0-3.0 ms,
    // about even at 48, the GEMM ahead from 64.
    t.e4m3_tokens_gemm_from = 48;
    t.e4m3_dot_order = e4m3_dot_order;
    t.e4m3_dot_act_floats = act_floats;
    t.attn_scores_rows_bf16 = attn_scores_rows_bf16;
    t.attn_scores_bf16 = attn_scores_bf16;
    t.attn_pv_bf16 = attn_pv_bf16;
    return t;
  }();
  return k;
}

}  // namespace strata::kern
