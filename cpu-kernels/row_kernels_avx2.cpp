// AVX2 + FMA + F16C row kernels (compiled with -mavx2 -mfma -mf16c; see CMakeLists.txt).
#include <immintrin.h>

#include <cstring>

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
  for (int64_t b0 = 0; b0 < n; b0 += scale_every) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    const float scale = scales[b0 / scale_every];
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

// E4M3 to f16 in registers: the byte in the high half of an int16, shifted right by one
// arithmetically (sign stays in bit 15, magnitude lands in bits 7-13), bit 14 cleared: the f16
// of the value scaled by 2^-8 (folded into the block scale). 16 codes per step.
float e4m3_dot(const uint8_t* w, const float* scales, int64_t scale_every, const float* x, int64_t n) {
  const __m128i zero = _mm_setzero_si128(), keep = _mm_set1_epi16(static_cast<short>(0xBFFF));
  const __m128i low7 = _mm_set1_epi8(0x7F);
  __m128i nan_codes = _mm_setzero_si128();
  __m256 acc = _mm256_setzero_ps();
  float tail = 0;
  bool tail_nan = false;
  for (int64_t b0 = 0; b0 < n; b0 += scale_every) {
    const int64_t b1 = b0 + scale_every < n ? b0 + scale_every : n;
    const float scale = scales[b0 / scale_every] * 256.0f;
    __m256 part0 = _mm256_setzero_ps(), part1 = _mm256_setzero_ps();
    int64_t i = b0;
    for (; i + 16 <= b1; i += 16) {
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i));
      nan_codes = _mm_or_si128(nan_codes, _mm_cmpeq_epi8(_mm_and_si128(c, low7), low7));
      const __m128i h0 = _mm_and_si128(_mm_srai_epi16(_mm_unpacklo_epi8(zero, c), 1), keep);
      const __m128i h1 = _mm_and_si128(_mm_srai_epi16(_mm_unpackhi_epi8(zero, c), 1), keep);
      part0 = _mm256_fmadd_ps(_mm256_cvtph_ps(h0), _mm256_loadu_ps(x + i), part0);
      part1 = _mm256_fmadd_ps(_mm256_cvtph_ps(h1), _mm256_loadu_ps(x + i + 8), part1);
    }
    acc = _mm256_fmadd_ps(_mm256_add_ps(part0, part1), _mm256_set1_ps(scale), acc);
    for (; i < b1; ++i) {
      const uint16_t m = w[i] & 0x7F;
      tail_nan |= m == 0x7F;
      tail += _cvtsh_ss(static_cast<uint16_t>((m << 7) | ((w[i] & 0x80) << 8))) * scale * x[i];
    }
  }
  if (tail_nan || _mm_movemask_epi8(nan_codes)) return __builtin_nanf("");
  return hsum(acc) + tail;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

#include "cpu-kernels/kquant_rows.inc"

}  // namespace

const RowKernels& row_kernels_avx2() {
  static const RowKernels k = {bf16, f16, q8_0, e4m3, mxfp4, q4_0, q4_k, q5_k, q6_k, dot, e4m3_dot, axpy};
  return k;
}

}  // namespace strata::kern
