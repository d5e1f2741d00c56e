// Scalar conversions between f32 and the narrow formats of checkpoints: bf16, f16, FP8 E4M3
// (OCP "fn": no infinities, 0x7F/0xFF NaN, max 448), E8M0 (power-of-two scale bytes) and FP4
// E2M1. f32 -> narrow rounds to nearest, ties to even, and saturates where the format has
// no infinity. These are the ground truth for every vectorized conversion.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace strata {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }
inline uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// FP8 E4M3 (bias 7, 3 mantissa bits, subnormals).
float e4m3_to_f32(uint8_t b);
uint8_t f32_to_e4m3(float f);  // saturates to +-448; NaN -> 0x7F

// E8M0: 2^(b-127); 0xFF is NaN.
inline float e8m0_to_f32(uint8_t b) {
  // The exponent field set directly; 2^-127 (b = 0) is the subnormal 0x00400000.
  if (b == 0xFF) return NAN;
  return f32_from_bits(b == 0 ? 0x00400000u : static_cast<uint32_t>(b) << 23);
}
// The E8M0 byte of 2^e, e clamped to [-127, 127].
inline uint8_t e8m0_from_exponent(int e) { return static_cast<uint8_t>((e < -127 ? -127 : e > 127 ? 127 : e) + 127); }

// FP4 E2M1: {0, 0.5, 1, 1.5, 2, 3, 4, 6}, sign in bit 3.
float e2m1_to_f32(uint8_t nibble);
uint8_t f32_to_e2m1(float f);  // saturates to +-6; NaN -> 0
// e2m1_to_f32(f32_to_e2m1(f)) by comparisons against the grid's midpoints, the same value for
// every f (NaN: 0), without the codec's frexp / ldexp; branch-free, so loops over it vectorize.
// The grid 0, 0.5, 1, 1.5, 2, 3, 4, 6 as a sum of steps; a midpoint goes to the even code (0, 1,
// 2, 4: codes 0, 2, 4, 6), so a step is taken at > below an even code and at >= above one.
inline float e2m1_round(float f) {
  const float a = f < 0 ? -f : f;
  const float r = 0.5f * static_cast<float>(a > 0.25f) + 0.5f * static_cast<float>(a >= 0.75f) +
                  0.5f * static_cast<float>(a > 1.25f) + 0.5f * static_cast<float>(a >= 1.75f) +
                  static_cast<float>(a > 2.5f) + static_cast<float>(a >= 3.5f) + 2.0f * static_cast<float>(a > 5.0f);
  return __builtin_copysignf(r, f == f ? f : 0.0f);  // the sign of f; a NaN's (either sign) +0
}

}  // namespace strata
