// AVX-512 intrinsics over SIMDe (portable implementations, native AVX2 underneath), for the
// test build that runs strata's AVX-512 kernel sources on a CPU without AVX-512. Included
// before a kernel source, so that its _mm512_* / VNNI / mask calls resolve to SIMDe.
// The few intrinsics Debian 12's SIMDe (0.7.4) lacks are written out below, lane by lane,
// each only where SIMDe has no alias of its own (and one whose SIMDe form is undefined
// behaviour).
#pragma once

#include <cstring>
#include <type_traits>

#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>

namespace strata::emulated {

// Lane i of a (member `from` of its private form) converted to lane i of the result (member
// `to`), for i < n: the widening and narrowing conversions SIMDe lacks.
template <class R, class RP, class RM, class A, class AP, class AM>
inline R convert_lanes(A a, int n, RM RP::*to, AM AP::*from) {
  static_assert(sizeof(A) == sizeof(AP) && sizeof(R) == sizeof(RP));
  AP x;
  std::memcpy(&x, &a, sizeof a);
  RP r{};
  for (int i = 0; i < n; ++i) (r.*to)[i] = static_cast<std::remove_reference_t<decltype((r.*to)[i])>>((x.*from)[i]);
  R out;
  std::memcpy(&out, &r, sizeof out);
  return out;
}

inline simde__mmask16 cmpeq_epi16_mask_256(simde__m256i a, simde__m256i b) {
  const simde__m256i_private x = simde__m256i_to_private(a), y = simde__m256i_to_private(b);
  simde__mmask16 m = 0;
  for (int i = 0; i < 16; ++i)
    if (x.i16[i] == y.i16[i]) m = static_cast<simde__mmask16>(m | (1u << i));
  return m;
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

// vpmultishiftqb: byte i of a 64-bit lane is the 8 bits of b's lane from bit (a's byte i) & 63
// on, rotating. SIMDe 0.7.4 shifts the lane left by 64 where that offset is 0 (undefined
// behaviour, which UBSan reports).
inline simde__m512i multishift_epi64_epi8_512(simde__m512i a, simde__m512i b) {
  const simde__m512i_private c = simde__m512i_to_private(a), v = simde__m512i_to_private(b);
  simde__m512i_private r;
  for (int i = 0; i < 64; ++i) {
    const uint64_t x = v.u64[i / 8];
    const unsigned s = c.u8[i] & 63u;
    r.u8[i] = static_cast<uint8_t>(s ? (x >> s) | (x << (64 - s)) : x);
  }
  return simde__m512i_from_private(r);
}

// vpshufd on each 128-bit lane: dword j of a lane is dword (imm >> 2j) & 3 of the same lane.
inline simde__m512i shuffle_epi32_512(simde__m512i a, int imm) {
  const simde__m512i_private x = simde__m512i_to_private(a);
  simde__m512i_private r;
  for (int i = 0; i < 16; ++i) r.i32[i] = x.i32[i / 4 * 4 + ((imm >> (2 * (i % 4))) & 3)];
  return simde__m512i_from_private(r);
}

}  // namespace strata::emulated

#undef _mm512_multishift_epi64_epi8
#define _mm512_multishift_epi64_epi8(a, b) strata::emulated::multishift_epi64_epi8_512(a, b)
// SIMDe's alias of _mm512_madd_epi16 takes the four arguments of a masked form; the function
// itself takes two.
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#if !defined(_mm256_cmpeq_epi16_mask)
#define _mm256_cmpeq_epi16_mask(a, b) strata::emulated::cmpeq_epi16_mask_256(a, b)
#endif
#if !defined(_mm512_cvtepi32_ps)
#define _mm512_cvtepi32_ps(a) \
  strata::emulated::convert_lanes<simde__m512>(a, 16, &simde__m512_private::f32, &simde__m512i_private::i32)
#endif
#if !defined(_mm512_cvtepi8_epi32)
#define _mm512_cvtepi8_epi32(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 16, &simde__m512i_private::i32, &simde__m128i_private::i8)
#endif
#if !defined(_mm512_cvtepu8_epi32)
#define _mm512_cvtepu8_epi32(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 16, &simde__m512i_private::i32, &simde__m128i_private::u8)
#endif
#if !defined(_mm512_cvtepu16_epi32)
#define _mm512_cvtepu16_epi32(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 16, &simde__m512i_private::i32, &simde__m256i_private::u16)
#endif
#if !defined(_mm512_cvtepi32_epi16)
#define _mm512_cvtepi32_epi16(a) \
  strata::emulated::convert_lanes<simde__m256i>(a, 16, &simde__m256i_private::i16, &simde__m512i_private::i32)
#endif
#if !defined(_mm512_cvtph_ps)
#define _mm512_cvtph_ps(a) strata::emulated::cvtph_ps_512(a)
#endif
#if !defined(_mm512_extractf32x8_ps)
#define _mm512_extractf32x8_ps(a, half) strata::emulated::extractf32x8_ps_512(a, half)
#endif
#if !defined(_mm512_cvtepu8_epi16)
#define _mm512_cvtepu8_epi16(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 32, &simde__m512i_private::u16, &simde__m256i_private::u8)
#endif
#if !defined(_mm512_cvtepi64_epi16)
#define _mm512_cvtepi64_epi16(a) \
  strata::emulated::convert_lanes<simde__m128i>(a, 8, &simde__m128i_private::i16, &simde__m512i_private::i64)
#endif
#if !defined(_mm512_cvtepu32_epi64)
#define _mm512_cvtepu32_epi64(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 8, &simde__m512i_private::u64, &simde__m256i_private::u32)
#endif
#if !defined(_mm512_cvtepi16_epi32)
#define _mm512_cvtepi16_epi32(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 16, &simde__m512i_private::i32, &simde__m256i_private::i16)
#endif
#if !defined(_mm512_cvtepu16_epi64)
#define _mm512_cvtepu16_epi64(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 8, &simde__m512i_private::u64, &simde__m128i_private::u16)
#endif
#if !defined(_mm512_shuffle_epi32)
#define _mm512_shuffle_epi32(a, imm) strata::emulated::shuffle_epi32_512(a, static_cast<int>(imm))
#endif
#if !defined(_mm512_cvtepu8_epi64)
#define _mm512_cvtepu8_epi64(a) \
  strata::emulated::convert_lanes<simde__m512i>(a, 8, &simde__m512i_private::u64, &simde__m128i_private::u8)
#endif
