// AVX2 + FMA + F16C row kernels (compiled with -mavx2 -mfma -mf16c; see CMakeLists.txt).
#include <immintrin.h>

#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/row_kernels.h"

namespace strata::kern {
namespace {

void bf16(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(src[i]) << 16;
    __builtin_memcpy(dst + i, &u, 4);
  }
}

void f16(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

void q8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = src + b * 34;
    uint16_t h;
    __builtin_memcpy(&h, blk, 2);
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(h));
    for (int k = 0; k < 4; ++k) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + 8 * k));
      _mm256_storeu_ps(dst + b * 32 + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
    }
  }
}

void e4m3(const uint8_t* src, const float* scales, int64_t scale_every, float* dst, int64_t n) {
  const __m128i low7 = _mm_set1_epi16(0x7F), sign = _mm_set1_epi16(0x80);
  const __m256 nan = _mm256_set1_ps(__builtin_nanf(""));
  for (int64_t b0 = 0, block = 0; b0 < n; b0 += scale_every, ++block) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    const float scale = scales[block];
    const __m256 s = _mm256_set1_ps(scale * 256.0f);
    int64_t i = b0;
    for (; i + 8 <= b1; i += 8) {
      const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i)));
      const __m128i mag = _mm_and_si128(w, low7);
      const __m128i h = _mm_or_si128(_mm_slli_epi16(mag, 7), _mm_slli_epi16(_mm_and_si128(w, sign), 8));
      const __m256 f = _mm256_mul_ps(_mm256_cvtph_ps(h), s);
      const __m256 is_nan = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(_mm_cmpeq_epi16(mag, low7)));
      _mm256_storeu_ps(dst + i, _mm256_blendv_ps(f, nan, is_nan));
    }
    for (; i < b1; ++i) {
      const uint16_t m = src[i] & 0x7F;
      const uint16_t h = static_cast<uint16_t>((m << 7) | ((src[i] & 0x80) << 8));
      dst[i] = m == 0x7F ? __builtin_nanf("") : _cvtsh_ss(h) * scale * 256.0f;
    }
  }
}

// E2M1 values doubled (integers): 0 0.5 1 1.5 2 3 4 6 -> 0 1 2 3 4 6 8 12, sign in bit 3.
void mxfp4(const uint8_t* src, const float* scales, float* dst, int64_t n) {
  const __m128i table = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
  const __m128i low = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + b * 16));
    const __m128i lo = _mm_and_si128(packed, low);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), low);
    const __m128i v0 = _mm_shuffle_epi8(table, _mm_unpacklo_epi8(lo, hi));  // elements 0..15
    const __m128i v1 = _mm_shuffle_epi8(table, _mm_unpackhi_epi8(lo, hi));  // elements 16..31
    const __m256 s = _mm256_set1_ps(scales[b] * 0.5f);
    float* o = dst + b * 32;
    _mm256_storeu_ps(o, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v0))));
    _mm256_storeu_ps(o + 8, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v0, 8)))));
    _mm256_storeu_ps(o + 16, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v1))));
    _mm256_storeu_ps(o + 24, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v1, 8)))));
  }
}

float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
         acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// E4M3 to bf16 without a conversion instruction (vcvtph2ps, the previous route, issues at
// half rate on AMD cores; this route measured faster there): bf16 holds every E4M3 value
// exactly. For a normal code s eeee mmm the bf16 is s | (e + 120) << 7 | m << 4: its low byte
// is the code's low nibble times 16, its high byte a 16-entry table on the code's high nibble
// (sign and the top three exponent bits). A bf16 in the high half of a 32-bit lane is its f32;
// in the low half, a shift makes it so. The 256-bit byte unpacks work per 128-bit lane, so the
// four f32 vectors of a 32-code step hold codes 0 2 4 6 16 18 20 22, 1 3 5 7 17 19 21 23,
// 8 10 12 14 24 26 28 30 and 9 11 13 15 25 27 29 31: the activations are read in that order
// (e4m3_dot_order).
void e4m3_dot_order(const float* x, int64_t n, float* xp, bool /*rounded: exact here*/) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int g = 0; g < 4; ++g)
      for (int j = 0; j < 8; ++j) xp[i + 8 * g + j] = x[i + (g >> 1) * 8 + (g & 1) + 2 * (j & 3) + (j >> 2) * 16];
  for (; i < n; ++i) xp[i] = x[i];
}

// One 32-code step of e4m3_dot widened to four f32 vectors (in the order e4m3_dot_order
// gives the activations). Normal codes only, unless Subnormal: then codes with e = 0 (zero and
// m · 2^-9) take a second pair of tables on m.
template <bool Subnormal>
inline void e4m3_widen(__m256i c, __m256 (&wv)[4]) {
  const __m256i low = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(-16);
  const __m256i hi_normal = _mm256_setr_epi8(60, 61, 62, 63, 64, 65, 66, 67, -68, -67, -66, -65, -64, -63, -62, -61,
                                             60, 61, 62, 63, 64, 65, 66, 67, -68, -67, -66, -65, -64, -63, -62, -61);
  __m256i lo = _mm256_and_si256(_mm256_slli_epi16(c, 4), top);
  __m256i hi = _mm256_shuffle_epi8(hi_normal, _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
  if constexpr (Subnormal) {
    const __m256i hi_sub = _mm256_setr_epi8(0, 59, 59, 59, 60, 60, 60, 60, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                            0, 59, 59, 59, 60, 60, 60, 60, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i lo_sub = _mm256_setr_epi8(0, 0, -128, -64, 0, 32, 64, 96, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                            0, 0, -128, -64, 0, 32, 64, 96, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i sub = _mm256_cmpeq_epi8(_mm256_and_si256(c, _mm256_set1_epi8(0x78)), _mm256_setzero_si256());
    const __m256i m = _mm256_and_si256(c, _mm256_set1_epi8(7));
    lo = _mm256_blendv_epi8(lo, _mm256_shuffle_epi8(lo_sub, m), sub);
    hi = _mm256_blendv_epi8(hi, _mm256_or_si256(_mm256_shuffle_epi8(hi_sub, m), _mm256_and_si256(c, _mm256_set1_epi8(-128))),
                            sub);
  }
  const __m256i h0 = _mm256_unpacklo_epi8(lo, hi), h1 = _mm256_unpackhi_epi8(lo, hi);
  const __m256i high = _mm256_set1_epi32(-65536);
  wv[0] = _mm256_castsi256_ps(_mm256_slli_epi32(h0, 16));
  wv[1] = _mm256_castsi256_ps(_mm256_and_si256(h0, high));
  wv[2] = _mm256_castsi256_ps(_mm256_slli_epi32(h1, 16));
  wv[3] = _mm256_castsi256_ps(_mm256_and_si256(h1, high));
}

// One 32-code step into NT tokens' four partial sums each (x[t] + i: token t's activations).
template <bool Subnormal, int NT>
inline void e4m3_step(__m256i c, const float* const* x, int64_t i, __m256 (&part)[NT][4]) {
  __m256 wv[4];
  e4m3_widen<Subnormal>(c, wv);
  for (int t = 0; t < NT; ++t)
    for (int k = 0; k < 4; ++k)
      part[t][k] = _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(x[t] + i + 8 * k), part[t][k]);
}

// e4m3_dot for NT tokens over one row, each 32-code step widened once for all of them; every
// token's sums take the same operations in the same order as alone. Each block runs the
// normal-code steps while keeping the bytewise minimum of (code + 1) & 0x7F: at most 8 exactly
// when the block holds a subnormal code (1..8) or a NaN code (0). Such a block (rare: a code
// under 2^-6 of the block scale, or a corrupt one) is summed again with the subnormal tables,
// or makes the results NaN, as the dequantizer then dot would give.
template <int NT>
[[gnu::always_inline]] inline void e4m3_dot_nt(const uint8_t* w, const float* scales, int64_t scale_every,
                                               const float* const* x, int64_t n, float* out) {
  const __m256i one = _mm256_set1_epi8(1), low7 = _mm256_set1_epi8(0x7F), eight = _mm256_set1_epi8(8);
  __m256 acc[NT];
  float tail[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), tail[t] = 0;
  bool nan = false;
  for (int64_t b0 = 0, block = 0; b0 < n; b0 += scale_every, ++block) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    const float scale = scales[block];
    __m256 part[NT][4];
    for (int t = 0; t < NT; ++t)
      for (__m256& p : part[t]) p = _mm256_setzero_ps();
    __m256i least = _mm256_set1_epi8(-1);
    int64_t i = b0;
    for (; i + 32 <= b1; i += 32) {
      if (i % 64 == 0) prefetch_ahead(w + i);
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
      least = _mm256_min_epu8(least, _mm256_and_si256(_mm256_add_epi8(c, one), low7));
      e4m3_step<false, NT>(c, x, i, part);
    }
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(least, eight), least)) != 0) {
      if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(least, _mm256_setzero_si256())) != 0) {
        for (int t = 0; t < NT; ++t) out[t] = __builtin_nanf("");
        return;
      }
      for (int t = 0; t < NT; ++t)
        for (__m256& p : part[t]) p = _mm256_setzero_ps();
      for (int64_t j = b0; j + 32 <= b1; j += 32)
        e4m3_step<true, NT>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j)), x, j, part);
    }
    for (int t = 0; t < NT; ++t) {
      const __m256 sum =
          _mm256_add_ps(_mm256_add_ps(part[t][0], part[t][1]), _mm256_add_ps(part[t][2], part[t][3]));
      acc[t] = _mm256_fmadd_ps(sum, _mm256_set1_ps(scale), acc[t]);
    }
    for (; i < b1; ++i) {  // the row's last codes, in their own order
      const uint16_t m = w[i] & 0x7F;
      nan |= m == 0x7F;
      const float v = _cvtsh_ss(static_cast<uint16_t>((m << 7) | ((w[i] & 0x80) << 8))) * (scale * 256.0f);
      for (int t = 0; t < NT; ++t) tail[t] += v * x[t][i];
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = nan ? __builtin_nanf("") : hsum(acc[t]) + tail[t];
}

float e4m3_dot(const uint8_t* w, const float* scales, int64_t scale_every, const float* x, int64_t n,
               bool /*rounded: exact here*/) {
  float out;
  e4m3_dot_nt<1>(w, scales, scale_every, &x, n, &out);
  return out;
}

// Rows one at a time, tokens in pairs (their eight partial sums fill most of the 16 registers).
void e4m3_dot_tokens(const uint8_t* w, int64_t ldw, int nr, const float* scales, int64_t scale_every,
                     const float* const* xp, int nt, int64_t n, bool /*rounded: exact here*/, float* out,
                     int64_t ldo) {
  for (int r = 0; r < nr; ++r) {
    float res[2];
    int t = 0;
    for (; t + 2 <= nt; t += 2) {
      e4m3_dot_nt<2>(w + r * ldw, scales, scale_every, xp + t, n, res);
      out[t * ldo + r] = res[0], out[(t + 1) * ldo + r] = res[1];
    }
    if (t < nt) e4m3_dot_nt<1>(w + r * ldw, scales, scale_every, xp + t, n, out + t * ldo + r);
  }
}

// Σ row.wide(i) · x[t][i..i+8) over 8-wide steps (four accumulators) for NT tokens at once, then
// row.elem(i) · x[t][i] for the rest, into out[t · ldo]: each 32-element step of the row is
// widened once for all the tokens. A token's sums take the same operations in the same order
// whatever NT is, so a token alone (the one-token dot) gets the same bits.
template <int NT, class Row>
[[gnu::always_inline]] inline void widened_dot_nt(Row row, const float* const* x, int64_t n, float* out,
                                                  int64_t ldo) {
  __m256 acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (__m256& a : acc[t]) a = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) {
      const __m256 wk = row.wide(i + 8 * k);
      for (int t = 0; t < NT; ++t)
        acc[t][k] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x[t] + i + 8 * k), acc[t][k]);
    }
  for (; i + 8 <= n; i += 8) {
    const __m256 w0 = row.wide(i);
    for (int t = 0; t < NT; ++t) acc[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc[t][0]);
  }
  for (int t = 0; t < NT; ++t) {
    float s = hsum(_mm256_add_ps(_mm256_add_ps(acc[t][0], acc[t][1]), _mm256_add_ps(acc[t][2], acc[t][3])));
    for (int64_t j = i; j < n; ++j) s += row.elem(j) * x[t][j];
    out[t * ldo] = s;
  }
}

// Rows widened in registers: vpmovzxwd and a shift (bf16 is the top half of an f32), or vcvtph2ps.
// The tail's bf16 is widened here, not by float_formats.h's bf16_to_f32: an inline function
// left out of line in this file would be a copy the linker may keep for every caller.
struct Bf16Row {
  const uint16_t* w;
  __m256 wide(int64_t i) const {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  float elem(int64_t i) const {
    const uint32_t u = static_cast<uint32_t>(w[i]) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
  }
};
struct F16Row {
  const uint16_t* w;
  __m256 wide(int64_t i) const { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))); }
  float elem(int64_t i) const { return _cvtsh_ss(w[i]); }
};

template <class Row, int NT>
void row_dot_nt(const uint16_t* w, const float* const* x, int64_t n, float* out, int64_t ldo) {
  widened_dot_nt<NT>(Row{w}, x, n, out, ldo);
}

float bf16_dot(const uint16_t* w, const float* x, int64_t n) {
  float out;
  row_dot_nt<Bf16Row, 1>(w, &x, n, &out, 1);
  return out;
}

float f16_dot(const uint16_t* w, const float* x, int64_t n) {
  float out;
  row_dot_nt<F16Row, 1>(w, &x, n, &out, 1);
  return out;
}

// Rows one at a time, tokens in pairs (their eight sums, four widened weights and an
// activation vector fill 13 of the 16 registers).
template <class Row>
void rows_tokens(const uint16_t* w, int64_t ldw, int nr, const float* const* x, int nt, int64_t n, float* out,
                 int64_t ldo) {
  for (int r = 0; r < nr; ++r) {
    int t = 0;
    for (; t + 2 <= nt; t += 2) row_dot_nt<Row, 2>(w + r * ldw, x + t, n, out + t * ldo + r, ldo);
    if (t < nt) row_dot_nt<Row, 1>(w + r * ldw, x + t, n, out + t * ldo + r, ldo);
  }
}

uint64_t sum_u64(const uint64_t* p, int64_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  const __m256i t = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  uint64_t s = static_cast<uint64_t>(_mm256_extract_epi64(t, 0)) + static_cast<uint64_t>(_mm256_extract_epi64(t, 1)) +
               static_cast<uint64_t>(_mm256_extract_epi64(t, 2)) + static_cast<uint64_t>(_mm256_extract_epi64(t, 3));
  for (; i < n; ++i) s += p[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

#include "cpu-kernels/bf16_rows.inc"
#include "cpu-kernels/kquant_rows.inc"
#include "cpu-kernels/kquant_t_rows_avx2.inc"
#include "cpu-kernels/lowbit_rows.inc"

struct AV {
  using T = __m256;
  static constexpr int kW = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T set1(float v) { return _mm256_set1_ps(v); }
  static constexpr int kRegisters = 16;
  static float sum(T v) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  }
};
#include "cpu-kernels/attention_rows.inc"

// glibc's 8-lane AVX2 expf (libmvec, the x86-64 vector function ABI's name): at most 4 ulp from
// the scalar expf, with its NaN, infinities, overflow and underflow.
extern "C" __m256 _ZGVdN8v_expf(__m256);

void exp_f32(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _ZGVdN8v_expf(_mm256_loadu_ps(x + i)));
  if (i < n) {  // the tail through one padded vector
    alignas(32) float t[8] = {};
    std::memcpy(t, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_store_ps(t, _ZGVdN8v_expf(_mm256_load_ps(t)));
    std::memcpy(x + i, t, static_cast<size_t>(n - i) * sizeof(float));
  }
}

}  // namespace

const RowKernels& row_kernels_avx2() {
  static const RowKernels k = [] {
    RowKernels t = {bf16,           f16,         q8_0,    e4m3,    mxfp4,
                    q4_0,           q4_k,        q5_k,    q6_k,    dot,
                    e4m3_dot,       bf16_dot,    f16_dot, axpy,    sum_u64,
                    e4m3_dot_order, nullptr,     q4_1,    q5_0,    q5_1,
                    q2_k,           q3_k,        iq4_nl,  iq4_xs,  e4m3_dot_tokens,
                    to_bf16,        attn_scores, attn_pv, exp_f32, attn_scores_rows};
    t.t_rows = kTRows;
    t.bf16_dot_tokens = rows_tokens<Bf16Row>;
    t.f16_dot_tokens = rows_tokens<F16Row>;
    return t;
  }();
  return k;
}

}  // namespace strata::kern
