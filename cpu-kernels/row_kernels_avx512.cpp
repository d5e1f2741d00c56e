// AVX-512 (F, BW, VL, DQ) row kernels (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq; see CMakeLists.txt). MXFP4 uses the AVX2 kernel.
#include <immintrin.h>

#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/prefetch.h"
#include "cpu-kernels/row_kernels.h"

namespace strata::kern {
namespace {

void bf16(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(src[i]) << 16;
    __builtin_memcpy(dst + i, &u, 4);
  }
}

void f16(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
}

void q8_0(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = src + b * 34;
    uint16_t h;
    __builtin_memcpy(&h, blk, 2);
    const __m512 d = _mm512_set1_ps(_cvtsh_ss(h));
    for (int k = 0; k < 2; ++k) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + 16 * k));
      _mm512_storeu_ps(dst + b * 32 + 16 * k, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
    }
  }
}

void e4m3(const uint8_t* src, const float* scales, int64_t scale_every, float* dst, int64_t n) {
  const __m256i low7 = _mm256_set1_epi16(0x7F), sign = _mm256_set1_epi16(0x80);
  const __m512 nan = _mm512_set1_ps(__builtin_nanf(""));
  for (int64_t b0 = 0, block = 0; b0 < n; b0 += scale_every, ++block) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    const float scale = scales[block];
    const __m512 s = _mm512_set1_ps(scale * 256.0f);
    int64_t i = b0;
    for (; i + 16 <= b1; i += 16) {
      const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
      const __m256i mag = _mm256_and_si256(w, low7);
      const __m256i h = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(w, sign), 8));
      const __m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), s);
      _mm512_storeu_ps(dst + i, _mm512_mask_mov_ps(f, _mm256_cmpeq_epi16_mask(mag, low7), nan));
    }
    if (i < b1) row_kernels_avx2().e4m3(src + i, &scale, b1 - i, dst + i, b1 - i);
  }
}

// Horizontal sum by halves (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its header).
float hsum(__m512 all) {
  const __m256 h8 = _mm256_add_ps(_mm512_extractf32x8_ps(all, 0), _mm512_extractf32x8_ps(all, 1));
  const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
  const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
}

float dot(const float* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
         acc3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  float s = hsum(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Σ wide(row, i) · x[t][i..i+16) over 16-wide steps (two accumulators) for R rows (ldw elements
// apart) and NT tokens at once, then elem(row, i) · x[t][i] for the rest, into out[t · ldo + r]:
// each 16-bit row is widened once for all the tokens and prefetched ahead (prefetch.h: measured
// on an AVX-512 Xeon). Every (row, token) sum takes the same operations in the same order
// whatever R and NT are, so a row and a token alone (the one-token dot) get the same bits.
template <int R, int NT, class Wide, class Elem>
[[gnu::always_inline]] inline void widened_dot_block(Wide wide, Elem elem, const uint16_t* w, int64_t ldw,
                                                     const float* const* x, int64_t n, float* out,
                                                     int64_t ldo) {
  __m512 acc0[R][NT], acc1[R][NT];
#pragma GCC unroll 32
  for (int k = 0; k < R * NT; ++k) acc0[k / NT][k % NT] = acc1[k / NT][k % NT] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 w0[R], w1[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      // kPrefetchAhead bytes on in the row; where the row ends before that, the same column of the
      // next block of R rows (what this row's stream reads next).
      if (R == 1 || 2 * (i + 32) + kPrefetchAhead <= 2 * n) prefetch_ahead<2>(w + r * ldw + i);
      else __builtin_prefetch(w + (r + R) * ldw + i, 0, 2);
      w0[r] = wide(w + r * ldw, i), w1[r] = wide(w + r * ldw, i + 16);
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512 x0 = _mm512_loadu_ps(x[t] + i), x1 = _mm512_loadu_ps(x[t] + i + 16);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc0[r][t] = _mm512_fmadd_ps(w0[r], x0, acc0[r][t]);
        acc1[r][t] = _mm512_fmadd_ps(w1[r], x1, acc1[r][t]);
      }
    }
  }
  for (; i + 16 <= n; i += 16)
    for (int r = 0; r < R; ++r) {
      const __m512 w0 = wide(w + r * ldw, i);
      for (int t = 0; t < NT; ++t) acc0[r][t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[t] + i), acc0[r][t]);
    }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < NT; ++t) {
      float s = hsum(_mm512_add_ps(acc0[r][t], acc1[r][t]));
      for (int64_t j = i; j < n; ++j) s += elem(w + r * ldw, j) * x[t][j];
      out[t * ldo + r] = s;
    }
}

// widened_dot_block over nr rows and nt tokens: two rows by four tokens at a time (16 sums in
// registers), then what is left.
template <int R, class Wide, class Elem>
void widened_rows_tokens(Wide wide, Elem elem, const uint16_t* w, int64_t ldw, const float* const* x, int nt,
                         int64_t n, float* out, int64_t ldo) {
  int t = 0;
  for (; t + 2 <= nt; t += 2) widened_dot_block<R, 2>(wide, elem, w, ldw, x + t, n, out + t * ldo, ldo);
  if (t < nt) widened_dot_block<R, 1>(wide, elem, w, ldw, x + t, n, out + t * ldo, ldo);
}

template <class Wide, class Elem>
void widened_dot_tokens(Wide wide, Elem elem, const uint16_t* w, int64_t ldw, int nr, const float* const* x,
                        int nt, int64_t n, float* out, int64_t ldo) {
  int r = 0;
  for (; r + 4 <= nr; r += 4) widened_rows_tokens<4>(wide, elem, w + r * ldw, ldw, x, nt, n, out + r, ldo);
  for (; r < nr; ++r) widened_rows_tokens<1>(wide, elem, w + r * ldw, ldw, x, nt, n, out + r, ldo);
}

// Rows widened in registers: vpmovzxwd and a shift (bf16 is the top half of an f32), or vcvtph2ps.
// The tail's bf16 is widened here, not by float_formats.h's bf16_to_f32: an inline function
// left out of line in this file would be a copy the linker may keep for every caller.
struct Bf16Wide {
  __m512 operator()(const uint16_t* row, int64_t i) const {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
};
struct Bf16Elem {
  float operator()(const uint16_t* row, int64_t i) const {
    const uint32_t u = static_cast<uint32_t>(row[i]) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
  }
};
struct F16Wide {
  __m512 operator()(const uint16_t* row, int64_t i) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i)));
  }
};
struct F16Elem {
  float operator()(const uint16_t* row, int64_t i) const { return _cvtsh_ss(row[i]); }
};

float bf16_dot(const uint16_t* w, const float* x, int64_t n) {
  float out;
  widened_dot_block<1, 1>(Bf16Wide{}, Bf16Elem{}, w, 0, &x, n, &out, 1);
  return out;
}
float f16_dot(const uint16_t* w, const float* x, int64_t n) {
  float out;
  widened_dot_block<1, 1>(F16Wide{}, F16Elem{}, w, 0, &x, n, &out, 1);
  return out;
}
void bf16_dot_tokens(const uint16_t* w, int64_t ldw, int nr, const float* const* x, int nt, int64_t n,
                     float* out, int64_t ldo) {
  widened_dot_tokens(Bf16Wide{}, Bf16Elem{}, w, ldw, nr, x, nt, n, out, ldo);
}
void f16_dot_tokens(const uint16_t* w, int64_t ldw, int nr, const float* const* x, int nt, int64_t n,
                    float* out, int64_t ldo) {
  widened_dot_tokens(F16Wide{}, F16Elem{}, w, ldw, nr, x, nt, n, out, ldo);
}

// E4M3 to f16 by an arithmetic shift of the byte in an int16's high half (the f16 is the value
// scaled by 2^-8, folded into the block scale; f16 subnormals hold E4M3's), then vcvtph2ps;
// 16 codes per 512-bit step. (The AVX2 kernel builds bf16 from tables instead.)
float e4m3_dot(const uint8_t* w, const float* scales, int64_t scale_every, const float* x, int64_t n,
               bool /*rounded: exact here*/) {
  const __m256i keep = _mm256_set1_epi16(static_cast<short>(0xBFFF)), nan_mag = _mm256_set1_epi16(0x7F00);
  __mmask16 nan_codes = 0;
  __m512 acc = _mm512_setzero_ps();
  float tail = 0;
  bool tail_nan = false;
  for (int64_t b0 = 0, block = 0; b0 < n; b0 += scale_every, ++block) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    const float scale = scales[block] * 256.0f;
    __m512 part = _mm512_setzero_ps();
    int64_t i = b0;
    for (; i + 16 <= b1; i += 16) {
      const __m256i hi = _mm256_slli_epi16(
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))), 8);
      nan_codes |= _mm256_cmpeq_epi16_mask(_mm256_and_si256(hi, nan_mag), nan_mag);
      const __m256i h = _mm256_and_si256(_mm256_srai_epi16(hi, 1), keep);
      part = _mm512_fmadd_ps(_mm512_cvtph_ps(h), _mm512_loadu_ps(x + i), part);
    }
    acc = _mm512_fmadd_ps(part, _mm512_set1_ps(scale), acc);
    for (; i < b1; ++i) {
      const uint16_t m = w[i] & 0x7F;
      tail_nan |= m == 0x7F;
      tail += _cvtsh_ss(static_cast<uint16_t>((m << 7) | ((w[i] & 0x80) << 8))) * scale * x[i];
    }
  }
  if (tail_nan || nan_codes) return __builtin_nanf("");
  const __m256 h8 = _mm256_add_ps(_mm512_extractf32x8_ps(acc, 0), _mm512_extractf32x8_ps(acc, 1));
  const __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
  const __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1))) + tail;
}

void mxfp4(const uint8_t* src, const float* scales, float* dst, int64_t n) { row_kernels_avx2().mxfp4(src, scales, dst, n); }

uint64_t sum_u64(const uint64_t* p, int64_t n) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 8));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 16));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 24));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
  uint64_t s = 0;
  for (uint64_t v : lanes) s += v;
  for (; i < n; ++i) s += p[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

#include "cpu-kernels/bf16_rows.inc"
#include "cpu-kernels/kquant_rows.inc"
#include "cpu-kernels/kquant_t_rows.inc"
#include "cpu-kernels/lowbit_rows.inc"

struct AV {
  using T = __m512;
  static constexpr int kW = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T set1(float v) { return _mm512_set1_ps(v); }
  static constexpr int kRegisters = 32;
  static float sum(T v) { return hsum(v); }
};
#include "cpu-kernels/attention_rows.inc"

// The AVX2 level's (libmvec's 8 lanes): its 16-lane AVX-512 expf would run real AVX-512
// instructions in the test build whose AVX-512 kernels are emulated.
void exp_f32(float* x, int64_t n) { row_kernels_avx2().exp(x, n); }

}  // namespace

const RowKernels& row_kernels_avx512() {
  static const RowKernels k = [] {
    RowKernels t = {bf16,       f16,     q8_0,        e4m3,    mxfp4,    q4_0,
                    q4_k,       q5_k,    q6_k,        dot,     e4m3_dot, bf16_dot,
                    f16_dot,    axpy,    sum_u64,     nullptr, nullptr,  q4_1,
                    q5_0,       q5_1,    q2_k,        q3_k,    iq4_nl,   iq4_xs,
                    nullptr,    to_bf16, attn_scores, attn_pv, exp_f32,  attn_scores_rows};
    t.t_rows = kTRows;
    t.bf16_dot_tokens = bf16_dot_tokens;
    t.f16_dot_tokens = f16_dot_tokens;
    return t;
  }();
  return k;
}

}  // namespace strata::kern
