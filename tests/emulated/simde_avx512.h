// AVX-512 intrinsics over SIMDe (portable implementations, native AVX2 underneath), for the
// test build that runs strata's AVX-512 kernel sources on a CPU without AVX-512. Included
// before a kernel source, so that its _mm512_* / VNNI / mask calls resolve to SIMDe.
// The few intrinsics Debian 12's SIMDe (0.7.4) lacks are written out below, lane by lane,
// each only where SIMDe has no alias of its own.
#pragma once

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>

namespace strata::emulated {

inline simde__mmask16 cmpeq_epi16_mask_256(simde__m256i a, simde__m256i b) {
  const simde__m256i_private x = simde__m256i_to_private(a), y = simde__m256i_to_private(b);
  simde__mmask16 m = 0;
  for (int i = 0; i < 16; ++i)
    if (x.i16[i] == y.i16[i]) m = static_cast<simde__mmask16>(m | (1u << i));
  return m;
}

inline simde__m512 cvtepi32_ps_512(simde__m512i a) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  simde__m512_private r;
  for (int i = 0; i < 16; ++i) r.f32[i] = static_cast<float>(x.i32[i]);
  return simde__m512_from_private(r);
}

inline simde__m512i cvtepi8_epi32_512(simde__m128i a) {
  const simde__m128i_private x = simde__m128i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 16; ++i) r.i32[i] = x.i8[i];
  return simde__m512i_from_private(r);
}

inline simde__m512i cvtepu16_epi32_512(simde__m256i a) {
  const simde__m256i_private x = simde__m256i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 16; ++i) r.i32[i] = x.u16[i];
  return simde__m512i_from_private(r);
}

inline simde__m512 cvtph_ps_512(simde__m256i a) {
  const simde__m256i_private x = simde__m256i_to_private(a);
  simde__m512_private r;
  for (int i = 0; i < 16; ++i) r.f32[i] = simde_float16_to_float32(simde_uint16_as_float16(x.u16[i]));
  return simde__m512_from_private(r);
}

inline simde__m256 extractf32x8_ps_512(simde__m512 a, int half) {
  const simde__m512_private x = simde__m512_to_private(a);
  simde__m256_private r;
  for (int i = 0; i < 8; ++i) r.f32[i] = x.f32[8 * (half & 1) + i];
  return simde__m256_from_private(r);
}

inline simde__m256i cvtepi32_epi16_512(simde__m512i a) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  simde__m256i_private r;
  for (int i = 0; i < 16; ++i) r.i16[i] = static_cast<int16_t>(x.i32[i]);
  return simde__m256i_from_private(r);
}

inline simde__m512i cvtepu8_epi16_512(simde__m256i a) {
  const simde__m256i_private x = simde__m256i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 32; ++i) r.u16[i] = x.u8[i];
  return simde__m512i_from_private(r);
}

inline simde__m128i cvtepi64_epi16_512(simde__m512i a) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  simde__m128i_private r;
  for (int i = 0; i < 8; ++i) r.i16[i] = static_cast<int16_t>(x.i64[i]);
  return simde__m128i_from_private(r);
}

inline simde__m512i cvtepu32_epi64_512(simde__m256i a) {
  const simde__m256i_private x = simde__m256i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 8; ++i) r.u64[i] = x.u32[i];
  return simde__m512i_from_private(r);
}

inline simde__m512i cvtepi16_epi32_512(simde__m256i a) {
  const simde__m256i_private x = simde__m256i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 16; ++i) r.i32[i] = x.i16[i];
  return simde__m512i_from_private(r);
}

}  // namespace strata::emulated

// SIMDe's alias of _mm512_madd_epi16 takes the four arguments of a masked form; the function
// itself takes two.
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#if !defined(_mm256_cmpeq_epi16_mask)
#define _mm256_cmpeq_epi16_mask(a, b) strata::emulated::cmpeq_epi16_mask_256(a, b)
#endif
#if !defined(_mm512_cvtepi32_ps)
#define _mm512_cvtepi32_ps(a) strata::emulated::cvtepi32_ps_512(a)
#endif
#if !defined(_mm512_cvtepi8_epi32)
#define _mm512_cvtepi8_epi32(a) strata::emulated::cvtepi8_epi32_512(a)
#endif
#if !defined(_mm512_cvtepu16_epi32)
#define _mm512_cvtepu16_epi32(a) strata::emulated::cvtepu16_epi32_512(a)
#endif
#if !defined(_mm512_cvtepi32_epi16)
#define _mm512_cvtepi32_epi16(a) strata::emulated::cvtepi32_epi16_512(a)
#endif
#if !defined(_mm512_cvtph_ps)
#define _mm512_cvtph_ps(a) strata::emulated::cvtph_ps_512(a)
#endif
#if !defined(_mm512_extractf32x8_ps)
#define _mm512_extractf32x8_ps(a, half) strata::emulated::extractf32x8_ps_512(a, half)
#endif
#if !defined(_mm512_cvtepu8_epi16)
#define _mm512_cvtepu8_epi16(a) strata::emulated::cvtepu8_epi16_512(a)
#endif
#if !defined(_mm512_cvtepi64_epi16)
#define _mm512_cvtepi64_epi16(a) strata::emulated::cvtepi64_epi16_512(a)
#endif
#if !defined(_mm512_cvtepu32_epi64)
#define _mm512_cvtepu32_epi64(a) strata::emulated::cvtepu32_epi64_512(a)
#endif
#if !defined(_mm512_cvtepi16_epi32)
#define _mm512_cvtepi16_epi32(a) strata::emulated::cvtepi16_epi32_512(a)
#endif
