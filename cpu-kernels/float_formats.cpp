#include "cpu-kernels/float_formats.h"

namespace strata {
namespace {

// Encodes a >= 0 (finite) into an unsigned minifloat with `man_bits` mantissa bits and the
// given exponent bias, round to nearest even, saturating at max_code. Subnormal codes are
// q * 2^(1-bias-man_bits); a rounded-up subnormal carries into the first normal code.
uint32_t encode_minifloat(float a, int man_bits, int bias, uint32_t max_code) {
  if (!(a < INFINITY)) return max_code;
  const int min_exp = 1 - bias;
  if (a < std::ldexp(1.0f, min_exp)) {
    const float q = std::rint(a / std::ldexp(1.0f, min_exp - man_bits));
    const uint32_t code = static_cast<uint32_t>(q);
    return code > max_code ? max_code : code;
  }
  int e;
  std::frexp(a, &e);
  e -= 1;  // a = 1.m * 2^e
  const int top = 1 << man_bits;
  uint32_t q = static_cast<uint32_t>(std::rint((a / std::ldexp(1.0f, e) - 1.0f) * top));
  if (q == static_cast<uint32_t>(top)) {
    q = 0;
    ++e;
  }
  const int64_t code = (static_cast<int64_t>(e + bias) << man_bits) | q;
  return code > max_code ? max_code : static_cast<uint32_t>(code);
}

float decode_minifloat(uint32_t code, int man_bits, int bias) {
  const uint32_t m = code & ((1u << man_bits) - 1);
  const int e = static_cast<int>(code >> man_bits);
  if (e == 0) return std::ldexp(static_cast<float>(m), 1 - bias - man_bits);
  return std::ldexp(1.0f + static_cast<float>(m) / (1 << man_bits), e - bias);
}

}  // namespace

float f16_to_f32(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (man << 13));
  const float mag = exp == 0 ? std::ldexp(static_cast<float>(man), -24)
                             : std::ldexp(1.0f + static_cast<float>(man) / 1024.0f, static_cast<int>(exp) - 15);
  return sign ? -mag : mag;
}

uint16_t f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return sign | (x > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (x >= 0x477ff000u) return sign | 0x7c00;  // rounds past the largest half (65504)
  if (x < 0x38800000u) {                       // below 2^-14: a subnormal half
    return sign | static_cast<uint16_t>(std::rint(f32_from_bits(x) * 16777216.0f));
  }
  x += 0xc8000fffu + ((x >> 13) & 1u);  // rebias 127 -> 15 and round to nearest even
  return sign | static_cast<uint16_t>(x >> 13);
}

float e4m3_to_f32(uint8_t b) {
  if ((b & 0x7f) == 0x7f) return NAN;
  const float mag = decode_minifloat(b & 0x7f, 3, 7);
  return (b & 0x80) ? -mag : mag;
}

uint8_t f32_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  return sign | static_cast<uint8_t>(encode_minifloat(std::fabs(f), 3, 7, 0x7e));
}

float e2m1_to_f32(uint8_t nibble) {
  const float mag = decode_minifloat(nibble & 0x7, 1, 1);
  return (nibble & 0x8) ? -mag : mag;
}

uint8_t f32_to_e2m1(float f) {
  if (std::isnan(f)) return 0;
  const uint8_t sign = std::signbit(f) ? 0x8 : 0;
  return sign | static_cast<uint8_t>(encode_minifloat(std::fabs(f), 1, 1, 0x7));
}

}  // namespace strata
