// The lower-bit GGUF formats (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, IQ4_NL, IQ4_XS): dequantizers on
// hand-built blocks, each expectation written from the format's own description (per half,
// per shift, per mask bit: the order ggml's documentation walks a block in), not from the
// per-element index arithmetic of lowbit_dequant.cpp; round trips through the reference
// quantizers with error bounds.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/dequant.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/quantize.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::deq;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<uint8_t> b(n);
  for (auto& v : b) v = static_cast<uint8_t>(g());
  return b;
}

TEST(DequantLowbit, Q4_1HandBlock) {
  BlockQ4_1 b;
  b.d = 0x3800;  // 0.5
  b.m = 0xBC00;  // -1
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = deq(WeightType::Q4_1, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 1) << j;
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j) - 1) << j;
  }
}

TEST(DequantLowbit, Q5_0AndQ5_1HandBlocks) {
  // Fifth bits: 0xA5C3F00F (bit j of the little-endian word is element j's).
  const uint32_t qh = 0xA5C3F00Fu;
  BlockQ5_0 a;
  a.d = 0x3400;  // 0.25
  std::memcpy(a.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) a.qs[j] = static_cast<uint8_t>(((3 * j) & 15) | (((7 * j + 1) & 15) << 4));
  BlockQ5_1 b;
  b.d = 0x4000;  // 2
  b.m = 0x3C00;  // 1
  std::memcpy(b.qh, &qh, 4);
  std::memcpy(b.qs, a.qs, 16);
  const auto y0 = deq(WeightType::Q5_0, &a, 32), y1 = deq(WeightType::Q5_1, &b, 32);
  for (int j = 0; j < 32; ++j) {
    const int low = j < 16 ? (3 * j) & 15 : (7 * (j - 16) + 1) & 15;
    const int q = low + 16 * static_cast<int>((qh >> j) & 1);
    EXPECT_EQ(y0[j], 0.25f * (q - 16)) << j;
    EXPECT_EQ(y1[j], 2.0f * q + 1) << j;
  }
}

TEST(DequantLowbit, Q2_KRandomBlocks) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    auto bytes = random_bytes(sizeof(BlockQ2_K), seed);
    BlockQ2_K b;
    std::memcpy(&b, bytes.data(), sizeof b);
    b.d = 0x3555;     // ~0.333
    b.dmin = 0x2E66;  // ~0.1
    const auto y = deq(WeightType::Q2_K, &b, 256);
    const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
    // Two halves of 128; in each, four 2-bit shifts over 32 bytes, the first 16 bytes one
    // sub-block and the next 16 the next; one scale byte per sub-block, in order.
    int out = 0, is = 0;
    for (int half = 0; half < 2; ++half)
      for (int shift = 0; shift < 8; shift += 2)
        for (int part = 0; part < 2; ++part, ++is)
          for (int l = 0; l < 16; ++l, ++out) {
            const int q = (b.qs[32 * half + 16 * part + l] >> shift) & 3;
            EXPECT_EQ(y[static_cast<size_t>(out)], d * (b.scales[is] & 15) * q - dmin * (b.scales[is] >> 4)) << out;
          }
  }
}

// The 16 Q3_K scales unpacked the way ggml's reference does it: the 12 bytes as three
// little-endian words, recombined with masks (a different route from q3_k_scale's per-scale
// bit picking).
void q3_scales_by_masks(const uint8_t in[12], int8_t out[16]) {
  uint32_t a[4];
  std::memcpy(a, in, 12);
  const uint32_t t = a[2], m1 = 0x03030303, m2 = 0x0f0f0f0f;
  a[2] = ((a[0] >> 4) & m2) | (((t >> 4) & m1) << 4);
  a[3] = ((a[1] >> 4) & m2) | (((t >> 6) & m1) << 4);
  a[0] = (a[0] & m2) | ((t & m1) << 4);
  a[1] = (a[1] & m2) | (((t >> 2) & m1) << 4);
  std::memcpy(out, a, 16);
  for (int k = 0; k < 16; ++k) out[k] = static_cast<int8_t>(out[k] - 32);
}

TEST(DequantLowbit, Q3_KRandomBlocks) {
  for (uint32_t seed : {4u, 5u, 6u}) {
    auto bytes = random_bytes(sizeof(BlockQ3_K), seed);
    BlockQ3_K b;
    std::memcpy(&b, bytes.data(), sizeof b);
    b.d = 0x2E66;  // ~0.1
    int8_t sc[16];
    q3_scales_by_masks(b.scales, sc);
    for (int k = 0; k < 16; ++k) EXPECT_EQ(q3_k_scale(k, b.scales), sc[k]) << k;
    const auto y = deq(WeightType::Q3_K, &b, 256);
    const float d = f16_to_f32(b.d);
    // As Q2_K, with one mask bit per shift step (1, 2, 4, ... across both halves) over the
    // 32 hmask bytes: a clear bit takes 4 off the 2-bit value.
    int out = 0, is = 0, bit = 1;
    for (int half = 0; half < 2; ++half)
      for (int shift = 0; shift < 8; shift += 2, bit <<= 1)
        for (int part = 0; part < 2; ++part, ++is)
          for (int l = 0; l < 16; ++l, ++out) {
            const int q = ((b.qs[32 * half + 16 * part + l] >> shift) & 3) - ((b.hmask[16 * part + l] & bit) ? 0 : 4);
            EXPECT_EQ(y[static_cast<size_t>(out)], d * sc[is] * q) << out;
          }
  }
}

TEST(DequantLowbit, Iq4HandAndRandomBlocks) {
  const int levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  BlockIQ4_NL n;
  n.d = 0x3C00;  // 1
  for (int j = 0; j < 16; ++j) n.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = deq(WeightType::IQ4_NL, &n, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], levels[j]) << j;
    EXPECT_EQ(y[j + 16], levels[15 - j]) << j;
  }
  for (uint32_t seed : {7u, 8u}) {
    auto bytes = random_bytes(sizeof(BlockIQ4_XS), seed);
    BlockIQ4_XS b;
    std::memcpy(&b, bytes.data(), sizeof b);
    b.d = 0x2000;  // 2^-7
    const auto x = deq(WeightType::IQ4_XS, &b, 256);
    for (int ib = 0; ib < 8; ++ib) {
      // Low 4 bits: nibble ib % 2 of byte ib / 2; high 2 bits: bits 2·ib of scales_h.
      const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 15) | (((b.scales_h >> (2 * ib)) & 3) << 4);
      const float dl = f16_to_f32(b.d) * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(x[static_cast<size_t>(32 * ib + j)], dl * levels[b.qs[16 * ib + j] & 15]) << ib << " " << j;
        EXPECT_EQ(x[static_cast<size_t>(32 * ib + j + 16)], dl * levels[b.qs[16 * ib + j] >> 4]) << ib << " " << j;
      }
    }
  }
}

// Round trips on N(0, 1) data: a broken layout or scale packing gives NMSE ~1 or more.
TEST(DequantLowbit, QuantizeRoundTripPerType) {
  std::mt19937 g(9);
  std::normal_distribution<float> nd;
  std::vector<float> x(4096);
  for (float& v : x) v = nd(g);
  const struct {
    WeightType t;
    double max_nmse;
  } cases[] = {{WeightType::Q4_1, 1.5e-2}, {WeightType::Q5_0, 4e-3},   {WeightType::Q5_1, 4e-3},
               {WeightType::Q2_K, 1.5e-1}, {WeightType::Q3_K, 5e-2},   {WeightType::IQ4_NL, 1.5e-2},
               {WeightType::IQ4_XS, 1.5e-2}};
  for (const auto& c : cases) {
    const auto bytes = quantize_row_ref(c.t, x.data(), 4096);
    ASSERT_EQ(bytes.size(), *weight_type_bytes(c.t, 4096));
    const double e = test::nmse(x, deq(c.t, bytes.data(), 4096));
    std::printf("%-6s round-trip NMSE %.3g\n", std::string(weight_type_name(c.t)).c_str(), e);
    EXPECT_LE(e, c.max_nmse) << weight_type_name(c.t);
    EXPECT_TRUE(is_gguf_block_type(c.t));
  }
}

}  // namespace
}  // namespace strata
