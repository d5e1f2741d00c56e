// Scalar dequantizers on hand-built blocks with known values, FP8 edge blocks, and
// quantize -> dequantize round trips for every type.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/dequant.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/quantize.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::deq;

TEST(Dequant, Q8_0HandBlock) {
  BlockQ8_0 b;
  b.d = 0x3800;  // 0.5
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j - 16);
  const auto y = deq(WeightType::Q8_0, &b, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * (j - 16)) << j;
}

TEST(Dequant, Q4_0HandBlock) {
  BlockQ4_0 b;
  b.d = 0x4000;  // 2.0
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = deq(WeightType::Q4_0, &b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * (j - 8)) << j;
    EXPECT_EQ(y[j + 16], 2.0f * (15 - j - 8)) << j;
  }
}

// Sub-block scales {1,2,3,4,17,33,50,63} and mins {0,5,10,63,16,31,47,62}, 6-bit packed by hand.
const uint8_t kPackedScales[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x45, 0x8A, 0xFF, 0x01, 0xF1, 0xF2, 0xEF};
const int kSc[8] = {1, 2, 3, 4, 17, 33, 50, 63};
const int kMin[8] = {0, 5, 10, 63, 16, 31, 47, 62};

TEST(Dequant, Q4_KHandBlock) {
  BlockQ4_K b;
  b.d = 0x3C00;     // 1.0
  b.dmin = 0x3800;  // 0.5
  std::memcpy(b.scales, kPackedScales, 12);
  std::memset(b.qs, 0x21, sizeof b.qs);  // low nibble 1, high nibble 2
  const auto y = deq(WeightType::Q4_K, &b, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32, q = (sub % 2 == 0) ? 1 : 2;
    EXPECT_EQ(y[i], 1.0f * kSc[sub] * q - 0.5f * kMin[sub]) << i;
  }
}

TEST(Dequant, Q5_KHandBlock) {
  BlockQ5_K b;
  b.d = 0x3C00;
  b.dmin = 0x3800;
  std::memcpy(b.scales, kPackedScales, 12);
  std::memset(b.qs, 0x21, sizeof b.qs);
  std::memset(b.qh, 0x09, sizeof b.qh);  // bit 0: sub-block 0 (+16); bit 3: sub-block 3 (+16)
  const auto y = deq(WeightType::Q5_K, &b, 256);
  for (int i = 0; i < 256; ++i) {
    const int sub = i / 32;
    const int q = ((sub % 2 == 0) ? 1 : 2) + ((sub == 0 || sub == 3) ? 16 : 0);
    EXPECT_EQ(y[i], 1.0f * kSc[sub] * q - 0.5f * kMin[sub]) << i;
  }
}

TEST(Dequant, Q6_KHandBlock) {
  BlockQ6_K b{};
  b.d = 0x3400;  // 0.25
  for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(s - 8);
  b.ql[0] = 0x5A;  // element 0 low bits 0xA, element 64 low bits 0x5
  b.qh[0] = 0xE4;  // element 0: +0, element 32: +16, element 64: +32, element 96: +48
  const auto y = deq(WeightType::Q6_K, &b, 256);
  EXPECT_EQ(y[0], 0.25f * -8 * (10 - 32));
  EXPECT_EQ(y[32], 0.25f * -6 * (16 - 32));
  EXPECT_EQ(y[64], 0.25f * -4 * (5 + 32 - 32));
  EXPECT_EQ(y[96], 0.25f * -2 * (48 - 32));
  EXPECT_EQ(y[1], 0.25f * -8 * -32);
  EXPECT_EQ(y[16], 0.25f * -7 * -32);   // second 16-element group uses scale 1
  EXPECT_EQ(y[128], 0.25f * 0 * -32);   // second half starts at scale 8
  EXPECT_EQ(y[255], 0.25f * 7 * -32);
}

TEST(Dequant, Fp8EdgeBlocksUseTheirOwnScale) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{130, 200}, {1, 129}, {257, 128}}) {
    const int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
    std::vector<uint8_t> w(static_cast<size_t>(rows * cols), 0x38);  // every element 1.0
    std::vector<float> s(static_cast<size_t>(br * bc));
    std::vector<uint8_t> s8(s.size());
    for (size_t k = 0; k < s.size(); ++k) {
      s[k] = 0.5f + static_cast<float>(k);
      s8[k] = static_cast<uint8_t>(120 + k);
    }
    std::vector<float> y(w.size()), y8(w.size());
    dequantize_fp8_blockscaled_ref(w.data(), rows, cols, s.data(), WeightType::F32, y.data());
    dequantize_fp8_blockscaled_ref(w.data(), rows, cols, s8.data(), WeightType::F8_E8M0, y8.data());
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const size_t k = static_cast<size_t>((i / 128) * bc + j / 128);
        ASSERT_EQ(y[i * cols + j], s[k]) << rows << "x" << cols << " at " << i << "," << j;
        ASSERT_EQ(y8[i * cols + j], std::ldexp(1.0f, static_cast<int>(120 + k) - 127)) << i << "," << j;
      }
  }
}

TEST(Dequant, Mxfp4NibbleOrderAndScales) {
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<uint8_t> packed(32), scales = {127, 129};  // 1.0 for the first 32, 4.0 for the next
  for (int k = 0; k < 32; ++k) packed[k] = static_cast<uint8_t>(((2 * k) % 16) | (((2 * k + 1) % 16) << 4));
  std::vector<float> y(64);
  dequantize_mxfp4_ref(packed.data(), scales.data(), 1, 64, y.data());
  for (int j = 0; j < 64; ++j) EXPECT_EQ(y[j], e2m1[j % 16] * (j < 32 ? 1.0f : 4.0f)) << j;
}

TEST(Dequant, PlainAndIntegerTypes) {
  const uint16_t bf[3] = {0x3f80, 0xc000, 0x0000};
  EXPECT_EQ(deq(WeightType::BF16, bf, 3), (std::vector<float>{1, -2, 0}));
  const uint16_t hf[2] = {0x3c00, 0xbc00};
  EXPECT_EQ(deq(WeightType::F16, hf, 2), (std::vector<float>{1, -1}));
  const int32_t i32[3] = {5, -7, 1 << 20};
  EXPECT_EQ(deq(WeightType::I32, i32, 3), (std::vector<float>{5, -7, 1 << 20}));
  const int64_t i64[1] = {-3};
  EXPECT_EQ(deq(WeightType::I64, i64, 1), (std::vector<float>{-3}));
}

TEST(Dequant, WrongSizesThrow) {
  std::vector<uint8_t> buf(1024);
  std::vector<float> y(1024);
  EXPECT_THROW(dequantize_row_ref(WeightType::Q4_K, buf.data(), y.data(), 100), std::invalid_argument);
  EXPECT_THROW(dequantize_row_ref(WeightType::MXFP4, buf.data(), y.data(), 64), std::invalid_argument);
  EXPECT_THROW(dequantize_mxfp4_ref(buf.data(), buf.data(), 1, 48, y.data()), std::invalid_argument);
  EXPECT_THROW(quantize_row_ref(WeightType::Q8_0, y.data(), 33), std::invalid_argument);
  EXPECT_THROW(quantize_row_ref(WeightType::MXFP4, y.data(), 64), std::invalid_argument);
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = d(rng);
  return x;
}

// Round-trip error bounds per type, on N(0,1) data: a broken layout gives NMSE ~ 1 or more.
TEST(Dequant, QuantizeRoundTripPerType) {
  const auto x = gaussian(4096, 7);
  const struct {
    WeightType t;
    double max_nmse;
  } cases[] = {{WeightType::F32, 0},        {WeightType::F16, 1e-7},   {WeightType::BF16, 1e-5},
               {WeightType::Q8_0, 1e-4},    {WeightType::Q4_0, 1.5e-2}, {WeightType::Q4_K, 1.5e-2},
               {WeightType::Q5_K, 4e-3},    {WeightType::Q6_K, 1e-3}};
  for (const auto& c : cases) {
    const auto bytes = quantize_row_ref(c.t, x.data(), 4096);
    EXPECT_EQ(bytes.size(), *weight_type_bytes(c.t, 4096));
    const double e = test::nmse(x, deq(c.t, bytes.data(), 4096));
    EXPECT_LE(e, c.max_nmse) << weight_type_name(c.t);
    std::printf("%-5s round-trip NMSE %.3g\n", std::string(weight_type_name(c.t)).c_str(), e);
  }
}

TEST(Dequant, BlockFormatsRoundTrip) {
  const int64_t rows = 130, cols = 256;
  const auto x = gaussian(static_cast<size_t>(rows * cols), 11);
  std::vector<float> y(x.size());
  for (WeightType st : {WeightType::F32, WeightType::F8_E8M0}) {
    std::vector<uint8_t> w, s;
    quantize_fp8_blockscaled_ref(x.data(), rows, cols, st, w, s);
    dequantize_fp8_blockscaled_ref(w.data(), rows, cols, s.data(), st, y.data());
    EXPECT_LT(test::nmse(x, y), 2e-3) << weight_type_name(st);
  }
  std::vector<uint8_t> p, s;
  quantize_mxfp4_ref(x.data(), rows, cols, p, s);
  dequantize_mxfp4_ref(p.data(), s.data(), rows, cols, y.data());
  const double e = test::nmse(x, y);
  EXPECT_LT(e, 4e-2);
  EXPECT_GT(e, 1e-4);
}

}  // namespace
}  // namespace strata
