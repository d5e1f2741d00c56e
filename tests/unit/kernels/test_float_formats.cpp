// Narrow float formats: exhaustive over every code, ties to even, saturation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/row_dequant.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

// Independent E4M3 decode from the field definition.
double e4m3_expected(int b) {
  const int s = b >> 7, e = (b >> 3) & 0xF, m = b & 7;
  const double mag = e == 0 ? m / 8.0 * std::pow(2.0, -6) : (1 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

TEST(FloatFormats, E4M3EveryCode) {
  for (int b = 0; b < 256; ++b) {
    const float v = e4m3_to_f32(static_cast<uint8_t>(b));
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << b;
      continue;
    }
    EXPECT_EQ(v, static_cast<float>(e4m3_expected(b))) << b;
    EXPECT_EQ(f32_to_e4m3(v), b) << "round trip of code " << b;
  }
  EXPECT_EQ(e4m3_to_f32(0x7e), 448.0f);
}

TEST(FloatFormats, E4M3RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(1.0f + 1.0f / 16)), 1.0f);     // tie -> even mantissa 0
  EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(1.0f + 3.0f / 16)), 1.25f);    // tie -> even mantissa 2
  EXPECT_EQ(e4m3_to_f32(f32_to_e4m3(1.0f + 1.0f / 15)), 1.125f);   // above the tie
  EXPECT_EQ(f32_to_e4m3(1000.0f), 0x7e);
  EXPECT_EQ(f32_to_e4m3(-1e30f), 0xfe);
  EXPECT_EQ(f32_to_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(f32_to_e4m3(NAN), 0x7f);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0);                 // half the smallest subnormal: tie -> 0
  EXPECT_EQ(f32_to_e4m3(std::ldexp(3.0f, -10)), 2);                 // 1.5 subnormal steps: tie -> 2
  EXPECT_EQ(f32_to_e4m3(std::ldexp(15.5f, -10)), 8);                // rounds up into the first normal
}

TEST(FloatFormats, E2M1EveryCode) {
  const float values[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int b = 0; b < 16; ++b) {
    const float want = (b & 8) ? -values[b & 7] : values[b & 7];
    EXPECT_EQ(e2m1_to_f32(static_cast<uint8_t>(b)), want) << b;
    EXPECT_EQ(f32_to_e2m1(want), b) << b;
  }
  EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(2.5f)), 2.0f);   // ties to even codes
  EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(5.0f)), 4.0f);
  EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(0.25f)), 0.0f);
  EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(0.75f)), 1.0f);
  EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(100.0f)), 6.0f);
  EXPECT_EQ(e2m1_to_f32(f32_to_e2m1(-7.0f)), -6.0f);
}

// e2m1_round (the FP4 quantize-dequantize of V4's indexer) is the codec's round trip for every
// float of magnitude up to 16 (every 1009th bit pattern, both signs), each grid midpoint and its
// neighbours, zero, infinities and NaN.
TEST(FloatFormats, E2M1RoundIsTheCodecsRoundTrip) {
  auto check = [](float f) {
    const float want = e2m1_to_f32(f32_to_e2m1(f)), got = e2m1_round(f);
    ASSERT_EQ(std::memcmp(&want, &got, sizeof want), 0) << f << ": " << want << " vs " << got;
  };
  uint32_t top;
  const float sixteen = 16.0f;
  std::memcpy(&top, &sixteen, sizeof top);
  for (uint32_t b = 0; b <= top; b += 1009)
    for (uint32_t sign : {0u, 0x80000000u}) {
      float f;
      const uint32_t bits = b | sign;
      std::memcpy(&f, &bits, sizeof f);
      check(f);
    }
  for (float m : {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f})
    for (float f : {m, std::nextafter(m, 0.0f), std::nextafter(m, 100.0f)}) check(f), check(-f);
  for (float f : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e30f, -1e30f}) check(f);
}

TEST(FloatFormats, E8M0) {
  for (int b = 0; b < 255; ++b) EXPECT_EQ(e8m0_to_f32(static_cast<uint8_t>(b)), std::ldexp(1.0, b - 127)) << b;
  EXPECT_TRUE(std::isnan(e8m0_to_f32(0xff)));
  EXPECT_EQ(e8m0_from_exponent(0), 127);
  EXPECT_EQ(e8m0_from_exponent(-300), 0);
}

TEST(FloatFormats, Bf16EveryCode) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float v = bf16_to_f32(static_cast<uint16_t>(h));
    EXPECT_EQ(f32_bits(v), h << 16);
    if (!std::isnan(v)) {
      EXPECT_EQ(f32_to_bf16(v), h);
    }
  }
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);      // tie -> even
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie -> even
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(FloatFormats, F16EveryCodeAgainstTheCompiler) {
#if defined(__FLT16_MAX__) && !defined(__clang__)
  for (uint32_t h = 0; h < 65536; ++h) {
    _Float16 ref;
    const uint16_t bits = static_cast<uint16_t>(h);
    std::memcpy(&ref, &bits, 2);
    const float v = f16_to_f32(bits);
    if (std::isnan(static_cast<float>(ref))) {
      EXPECT_TRUE(std::isnan(v));
      continue;
    }
    EXPECT_EQ(v, static_cast<float>(ref)) << h;
    EXPECT_EQ(f32_to_f16(v), bits) << h;
  }
  // f32 -> f16 over a sweep of values, including ties and subnormals.
  for (float mag = 1e-9f; mag < 70000.0f; mag = mag * 1.0007f + 1e-9f) {
    for (const float x : {mag, -mag}) {
      const _Float16 ref = static_cast<_Float16>(x);
      uint16_t rb;
      std::memcpy(&rb, &ref, 2);
      ASSERT_EQ(f32_to_f16(x), rb) << x;
    }
  }
  for (int e = -30; e < -10; ++e)
    for (float m : {1.0f, 1.5f, 1.25f, 1.0009765625f, 1.00048828125f}) {
      const float x = std::ldexp(m, e);
      const _Float16 ref = static_cast<_Float16>(x);
      uint16_t rb;
      std::memcpy(&rb, &ref, 2);
      ASSERT_EQ(f32_to_f16(x), rb) << x;
    }
#else
  GTEST_SKIP() << "this compiler has no _Float16 to compare against";
#endif
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// The vector bf16 rounding of each level (the BF16 GEMM's panels and activations) gives
// f32_to_bf16's bits for every kind of value: ties both ways, NaNs with payloads, infinities,
// signed zeros, subnormals, the largest finite values (which round to infinity), and random
// bit patterns, over lengths with vector tails.
TEST(FloatFormats, EveryLevelRoundsToBf16AsTheScalarDoes) {
  std::vector<uint32_t> bits = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x7F800001u,
                                0xFFBFFFFFu, 0x7FFFFFFFu, 0x00000001u, 0x807FFFFFu, 0x3F808000u, 0x3F818000u,
                                0x3F807FFFu, 0x7F7FFFFFu, 0xFF7F8000u, 0x00008000u, 0x00018000u, 0x4049FDB0u};
  std::mt19937 g(5);
  for (int i = 0; i < 1000; ++i) bits.push_back(static_cast<uint32_t>(g()));
  std::vector<float> x(bits.size());
  std::memcpy(x.data(), bits.data(), bits.size() * 4);
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = f32_to_bf16(x[i]);
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    for (size_t n : {x.size(), size_t{1}, size_t{17}, size_t{33}}) {
      std::vector<uint16_t> got(n, 0xAAAA);
      to_bf16_row(x.data(), got.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], want[i]) << cpu_level_name(level) << " bits 0x" << std::hex << bits[i];
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

}  // namespace
}  // namespace strata
