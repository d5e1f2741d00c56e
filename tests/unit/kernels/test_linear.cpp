// linear / linear_t over every stored weight type against the f64 whole-matrix reference,
// and row dequantization against the whole-matrix dequantizers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cpu-kernels/dequant.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/quantize.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::Mat;
using test::randn;

Mat make(WeightType t, int64_t rows, int64_t cols, WeightType scale_type = WeightType::F32) {
  return test::make_matrix(t, rows, cols, scale_type);
}

struct Case {
  WeightType type;
  int64_t rows, cols;
  WeightType scale_type = WeightType::F32;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {WeightType::F32, 37, 48},       {WeightType::F16, 33, 64},       {WeightType::BF16, 40, 96},
      {WeightType::Q8_0, 35, 96},      {WeightType::Q4_0, 29, 64},      {WeightType::Q4_K, 19, 512},
      {WeightType::Q5_K, 21, 256},     {WeightType::Q6_K, 17, 256},     {WeightType::F8_E4M3, 200, 300},
      {WeightType::F8_E4M3, 130, 129, WeightType::F8_E8M0},             {WeightType::MXFP4, 45, 96},
      // Rows longer than one 1024-column chunk, with short last chunks.
      {WeightType::Q4_K, 3, 2304},     {WeightType::Q6_K, 2, 1280},     {WeightType::Q8_0, 4, 1056},
      {WeightType::BF16, 3, 1500},     {WeightType::F8_E4M3, 5, 2100, WeightType::F8_E8M0},
      {WeightType::F8_E4M3, 130, 1100}, {WeightType::MXFP4, 3, 2080},
      // The lower-bit GGUF formats (scalar dequantizers at every level).
      {WeightType::Q4_1, 23, 64},      {WeightType::Q5_0, 9, 96},       {WeightType::Q5_1, 11, 1056},
      {WeightType::Q2_K, 13, 512},     {WeightType::Q3_K, 7, 1280},     {WeightType::IQ4_NL, 10, 96},
      {WeightType::IQ4_XS, 6, 2304},
      // The lattice i-quants.
      {WeightType::IQ2_XXS, 9, 512},   {WeightType::IQ2_XS, 5, 256},    {WeightType::IQ2_S, 7, 1280},
      {WeightType::IQ3_XXS, 6, 256},   {WeightType::IQ3_S, 5, 768},     {WeightType::IQ1_S, 8, 512},
      {WeightType::IQ1_M, 4, 2304},
  };
  return c;
}

TEST(Linear, EveryTypeMatchesTheF64Reference) {
  const ScopedIntDot exact(false);  // the f32 path; the integer dot has its own tests (test_qdot.cpp)
  for (const Case& c : cases()) {
    const Mat m = make(c.type, c.rows, c.cols, c.scale_type);
    for (int64_t n : {1, 3, 8}) {
      const std::vector<float> x = randn(n * c.cols, 11);
      std::vector<float> y(static_cast<size_t>(n * c.rows)), ref(y.size());
      linear(m.view, x.data(), n, y.data());
      linear_rows_ref(m.view, 0, c.rows, x.data(), n, c.cols, ref.data(), c.rows);
      EXPECT_LT(test::nmse(ref, y), 1e-10) << weight_type_name(c.type) << " n=" << n;
    }
  }
}

// Batches of gemm_min_batch() tokens and more over matrices of 64K+ elements go through
// oneDNN (panels dequantized to f32): every type, row ranges, strides, several panels.
TEST(Linear, OnednnBatchPathMatchesTheF64Reference) {
  ASSERT_LE(gemm_min_batch(), 16) << "STRATA_GEMM_MIN_BATCH turned the path off";
  const ScopedGemmBf16 f32(false);  // exact to the reference; the BF16 GEMM is tested below
  const ScopedIntDotGemmMinBatch gemm_for_all(gemm_min_batch());  // integer-dot types too
  const Case big[] = {{WeightType::F32, 70, 1024},  {WeightType::BF16, 66, 1024}, {WeightType::F16, 64, 1024},
                      {WeightType::Q8_0, 65, 1024}, {WeightType::Q4_0, 64, 1024}, {WeightType::Q4_K, 64, 1024},
                      {WeightType::Q5_K, 64, 1024}, {WeightType::Q6_K, 67, 1024}, {WeightType::F8_E4M3, 130, 1000},
                      {WeightType::F8_E4M3, 129, 520, WeightType::F8_E8M0},      {WeightType::MXFP4, 70, 1024},
                      {WeightType::Q2_K, 64, 1024}, {WeightType::Q3_K, 65, 1024}, {WeightType::IQ4_XS, 64, 1024},
                      {WeightType::Q4_1, 64, 1024}, {WeightType::Q5_0, 64, 1024}, {WeightType::Q5_1, 64, 1024},
                      {WeightType::IQ4_NL, 64, 1024}, {WeightType::IQ2_XXS, 64, 1024}, {WeightType::IQ2_XS, 64, 1024},
                      {WeightType::IQ2_S, 64, 1024}, {WeightType::IQ3_XXS, 64, 1024}, {WeightType::IQ3_S, 64, 1024},
                      {WeightType::IQ1_S, 64, 1024}, {WeightType::IQ1_M, 64, 1024},
                      // More than one 8 MiB panel of f32 rows.
                      {WeightType::Q8_0, 1100, 2048}};
  for (const Case& c : big) {
    const Mat m = make(c.type, c.rows, c.cols, c.scale_type);
    for (int64_t n : {gemm_min_batch(), int64_t{37}}) {
      // The first batch from there that this type sends to oneDNN (FP8 whose fused dot reads a
      // row once for many tokens goes there later).
      while (linear_path(m.view, c.rows, n) != LinearPath::Gemm && n < 64) ++n;
      ASSERT_EQ(linear_path(m.view, c.rows, n), LinearPath::Gemm) << weight_type_name(c.type);
      const std::vector<float> x = randn(n * c.cols, 17);
      std::vector<float> y(static_cast<size_t>(n * c.rows)), ref(y.size());
      linear(m.view, x.data(), n, y.data());
      linear_rows_ref(m.view, 0, c.rows, x.data(), n, c.cols, ref.data(), c.rows);
      EXPECT_LT(test::nmse(ref, y), 1e-10) << weight_type_name(c.type) << " " << c.rows << "x" << c.cols << " n=" << n;
    }
  }
  // A row range with strided activations and outputs.
  const Mat m = make(WeightType::Q4_K, 300, 512);
  const int64_t n = 20, ldx = 530, ldy = 211, r0 = 50, nr = 200;
  const std::vector<float> x = randn(n * ldx, 5);
  std::vector<float> y(static_cast<size_t>(n * ldy), -7.0f), ref(y.size(), -7.0f);
  linear_rows(m.view, r0, nr, x.data(), n, ldx, y.data(), ldy);
  linear_rows_ref(m.view, r0, nr, x.data(), n, ldx, ref.data(), ldy);
  EXPECT_LT(test::nmse(ref, y), 1e-10);
  EXPECT_EQ(y[static_cast<size_t>(nr)], -7.0f) << "columns past nr must stay untouched";
}

// The BF16 batch path (where oneDNN has it): panels and activations rounded to bf16, sums in
// f32. Its error against the exact product is that rounding's: NMSE ~1e-5 on Gaussian data.
TEST(Linear, OnednnBf16BatchPathIsWithinBf16Rounding) {
  std::string why;
  if (!gemm_bf16_available(&why)) GTEST_SKIP() << why;
  ASSERT_LE(gemm_min_batch(), 16) << "STRATA_GEMM_MIN_BATCH turned the path off";
  const ScopedGemmBf16 on(true);
  EXPECT_STREQ(gemm_type_name(), "bf16");
  const Case big[] = {{WeightType::BF16, 66, 1024}, {WeightType::Q4_K, 64, 1024}, {WeightType::Q8_0, 1100, 2048},
                      {WeightType::F8_E4M3, 130, 1000}, {WeightType::MXFP4, 70, 1024}};
  for (const Case& c : big) {
    const Mat m = make(c.type, c.rows, c.cols, c.scale_type);
    const int64_t n = 37;
    const std::vector<float> x = randn(n * c.cols, 17);
    std::vector<float> y(static_cast<size_t>(n * c.rows)), ref(y.size());
    linear(m.view, x.data(), n, y.data());
    linear_rows_ref(m.view, 0, c.rows, x.data(), n, c.cols, ref.data(), c.rows);
    const double e = test::nmse(ref, y);
    std::printf("bf16 GEMM %s %lldx%lld: NMSE %.2e vs the exact product\n", std::string(weight_type_name(c.type)).c_str(),
                static_cast<long long>(c.rows), static_cast<long long>(c.cols), e);
    EXPECT_LT(e, 1e-4) << weight_type_name(c.type);
    EXPECT_GT(e, 0) << "bf16 rounding must show: the f32 path ran instead";
  }
}

// The BF16 GEMM's numbers on any CPU (gemm_bf16_rounding): operands rounded to bf16, products
// summed in f32. Within bf16 rounding of the exact product, and where oneDNN's BF16 matmul runs,
// equal to it up to the order of f32 sums.
TEST(Linear, Bf16RoundingOfTheF32PathIsTheBf16GemmsNumbers) {
  ASSERT_LE(gemm_min_batch(), 16) << "STRATA_GEMM_MIN_BATCH turned the path off";
  const Case big[] = {{WeightType::F32, 70, 1024}, {WeightType::BF16, 66, 1024}, {WeightType::Q4_K, 64, 1024},
                      {WeightType::F8_E4M3, 130, 1000}, {WeightType::MXFP4, 70, 1024}};
  for (const Case& c : big) {
    const Mat m = make(c.type, c.rows, c.cols, c.scale_type);
    const int64_t n = 37;
    const std::vector<float> x = randn(n * c.cols, 17);
    std::vector<float> y(static_cast<size_t>(n * c.rows)), ref(y.size()), native(y.size());
    linear_rows_ref(m.view, 0, c.rows, x.data(), n, c.cols, ref.data(), c.rows);
    {
      const ScopedGemmBf16 f32(false);
      const ScopedGemmBf16Rounding rounding(true);
      EXPECT_STREQ(gemm_type_name(), "f32 over bf16-rounded operands");
      linear(m.view, x.data(), n, y.data());
    }
    const double e = test::nmse(ref, y);
    EXPECT_LT(e, 1e-4) << weight_type_name(c.type);
    EXPECT_GT(e, 1e-7) << weight_type_name(c.type) << ": bf16 rounding must show";
    if (!gemm_bf16_available()) continue;
    const ScopedGemmBf16 on(true);
    linear(m.view, x.data(), n, native.data());
    EXPECT_LT(test::nmse(native, y), 1e-10) << weight_type_name(c.type) << ": oneDNN's BF16 matmul differs";
  }
}

// Primitives are made once per shape (and thread): the same product again creates none.
TEST(Linear, OnednnPrimitivesAreCachedByShape) {
  const ScopedIntDotGemmMinBatch gemm_for_all(gemm_min_batch());
  const Mat m = make(WeightType::Q8_0, 64, 1024);
  const std::vector<float> x = randn(21 * 1024, 3);
  std::vector<float> y(21 * 64);
  linear(m.view, x.data(), 20, y.data());
  const long after_first = gemm_primitives_created();
  for (int i = 0; i < 3; ++i) linear(m.view, x.data(), 20, y.data());
  EXPECT_EQ(gemm_primitives_created(), after_first);
  linear(m.view, x.data(), 21, y.data());  // a new shape
  EXPECT_EQ(gemm_primitives_created(), after_first + 1);
}

// F32 weights multiplied in f32 need no panel: oneDNN reads them in place (and BF16 ones in
// bf16); other types are widened first.
TEST(Linear, OnednnReadsWeightsOfItsOwnTypeInPlace) {
  const ScopedGemmBf16 f32(false);
  const Mat f = make(WeightType::F32, 300, 512), q = make(WeightType::Q8_0, 300, 512);
  const int64_t n = 20, ldx = 530, ldy = 211, r0 = 50, nr = 200;
  const std::vector<float> x = randn(n * ldx, 9);
  long before = gemm_in_place_products();
  std::vector<float> y(static_cast<size_t>(n * ldy), -7.0f), ref(y.size(), -7.0f);
  linear_rows(f.view, r0, nr, x.data(), n, ldx, y.data(), ldy);
  linear_rows_ref(f.view, r0, nr, x.data(), n, ldx, ref.data(), ldy);
  EXPECT_EQ(gemm_in_place_products(), before + 1);
  EXPECT_LT(test::nmse(ref, y), 1e-10);
  EXPECT_EQ(y[static_cast<size_t>(nr)], -7.0f) << "columns past nr must stay untouched";
  before = gemm_in_place_products();
  linear_rows(q.view, r0, nr, x.data(), n, ldx, y.data(), ldy);
  EXPECT_EQ(gemm_in_place_products(), before) << "Q8_0 is widened into a panel";
}

TEST(Linear, BatchedProductTypeFollowsTheSwitch) {
  const ScopedGemmBf16 off(false);
  EXPECT_STREQ(gemm_type_name(), "f32");
  const ScopedGemmBf16 on(true);
  EXPECT_STREQ(gemm_type_name(), gemm_bf16_available() ? "bf16" : "f32");
}

TEST(Linear, RowRangesAndStridesAddressTheRightRows) {
  const ScopedIntDot exact(false);  // the f32 path; the integer dot has its own tests (test_qdot.cpp)
  const Mat m = make(WeightType::Q8_0, 24, 64);
  const int64_t n = 3, ldx = 80, ldy = 13;
  const std::vector<float> x = randn(n * ldx, 3);
  std::vector<float> y(static_cast<size_t>(n * ldy), -7.0f), ref(y.size(), -7.0f);
  linear_rows(m.view, 5, 10, x.data(), n, ldx, y.data(), ldy);
  linear_rows_ref(m.view, 5, 10, x.data(), n, ldx, ref.data(), ldy);
  EXPECT_LT(test::nmse(ref, y), 1e-10);
  EXPECT_EQ(y[10], -7.0f) << "columns past nr must stay untouched";
}

// At every level (Q4_K: its fused kernels on AVX2 and AVX-512, widened rows at the scalar level).
TEST(Linear, TransposedProductMatchesTheReference) {
  for (const Case& c : cases()) {
    const Mat m = make(c.type, c.rows, c.cols, c.scale_type);
    const int64_t n = 2, r0 = c.rows / 3, nr = c.rows - r0;
    const std::vector<float> x = randn(n * nr, 5);
    std::vector<float> ref(static_cast<size_t>(n * c.cols));
    linear_t_rows_ref(m.view, r0, nr, x.data(), n, nr, ref.data(), c.cols);
    test::for_each_level([&](CpuLevel level) {
      std::vector<float> y(ref.size(), -1.0f);
      linear_t_rows(m.view, r0, nr, x.data(), n, nr, y.data(), c.cols);
      EXPECT_LT(test::nmse(ref, y), 1e-10) << weight_type_name(c.type) << " " << cpu_level_name(level);
    });
  }
}

// The fused transposed product serves the K-quants and IQ4_XS at the vector levels, each against
// the reference over a row range that starts mid-matrix and columns of several super-blocks; it
// declines the rest (the caller widens rows).
TEST(Linear, FusedTransposedProductServesTheKQuantsAndIq4Xs) {
  const Mat q8 = make(WeightType::Q8_0, 8, 256);
  const std::vector<float> x = randn(70, 9);
  std::vector<float> y(768), ref(768);
  for (WeightType t : {WeightType::Q4_K, WeightType::Q5_K, WeightType::Q6_K, WeightType::Q2_K,
                       WeightType::Q3_K, WeightType::IQ4_XS}) {
    const Mat m = make(t, 70, 768);
    linear_t_rows_ref(m.view, 3, 67, x.data(), 1, 67, ref.data(), 768);
    test::for_each_level([&](CpuLevel level) {
      const bool served = fused_t_rows(m.view, 3, 67, x.data(), y.data());
      EXPECT_EQ(served, level != CpuLevel::Scalar) << weight_type_name(t) << " " << cpu_level_name(level);
      if (served) {
        EXPECT_LT(test::nmse(ref, y), 1e-10) << weight_type_name(t) << " " << cpu_level_name(level);
      }
    });
  }
  test::for_each_level([&](CpuLevel level) {
    EXPECT_FALSE(fused_t_rows(q8.view, 0, 8, x.data(), y.data())) << cpu_level_name(level);
  });
}

TEST(Linear, RowDequantizationEqualsWholeMatrixDequantizers) {
  const Mat f8 = make(WeightType::F8_E4M3, 200, 300);
  std::vector<float> whole(200 * 300), rows(whole.size());
  dequantize_fp8_blockscaled_ref(f8.data.data(), 200, 300, f8.scale.data(), WeightType::F32, whole.data());
  dequantize_rows(f8.view, 0, 200, rows.data());
  EXPECT_EQ(whole, rows);
  const Mat f4 = make(WeightType::MXFP4, 45, 96);
  whole.resize(45 * 96);
  rows.resize(whole.size());
  dequantize_mxfp4_ref(f4.data.data(), f4.scale.data(), 45, 96, whole.data());
  dequantize_rows(f4.view, 0, 45, rows.data());
  EXPECT_EQ(whole, rows);
}

// The fused FP8 row dot: a NaN code anywhere in a row (vector body or scalar tail) makes that
// row's product NaN at every level, as dequantize-then-dot does; other rows stay finite.
TEST(Linear, Fp8NanCodesPropagateThroughTheFusedDot) {
  const CpuLevel saved = dispatch_level();
  for (CpuLevel level : {CpuLevel::Scalar, CpuLevel::Avx2, CpuLevel::Avx512}) {
    if (set_dispatch_level(level) != level) continue;
    // A NaN code in any row, in the body, a later block or the tail, makes that row's product NaN only.
    for (int64_t nan_row : {int64_t{0}, int64_t{1}, int64_t{2}})
      for (int64_t nan_col : {int64_t{5}, int64_t{140}, int64_t{297}}) {  // body, second block, tail
        Mat m = make(WeightType::F8_E4M3, 3, 300);
        m.data[static_cast<size_t>(nan_row * 300 + nan_col)] = nan_col % 2 ? 0x7F : 0xFF;
        const std::vector<float> x = randn(300, 4);
        std::vector<float> y(3);
        linear(m.view, x.data(), 1, y.data());
        for (int64_t r = 0; r < 3; ++r)
          EXPECT_EQ(std::isnan(y[static_cast<size_t>(r)]), r == nan_row)
              << cpu_level_name(level) << " row " << r << ", NaN code at row " << nan_row << " column " << nan_col;
      }
  }
  set_dispatch_level(saved);
}

// Where the FP8 fused dot reads a row once for several tokens (AVX-512 BF16 + VBMI: up to 47
// rounded or 15 exact ones, two rows by eight or four tokens at a time; AVX2: up to 15, a row by
// two tokens at a time), a batch below the GEMM's takes it, and each token gets exactly what it gets alone —
// with a 40-code tail, partial scale blocks, rows of two 128-row scale blocks, and a row range that starts at
// an odd row and crosses a scale block (so a pair of rows is split there); a batch of one and a batch of n
// are the same computation per token (no batch-dependent rounding).
TEST(Linear, Fp8TokensShareARowReadAndKeepTheirOwnResults) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    constexpr int64_t kRows = 200, kCols = 1000;
    Mat m = make(WeightType::F8_E4M3, kRows, kCols, WeightType::F32);
    // A NaN code in a body (row 5) and in a tail (row 9); subnormal codes (1..7: m · 2^-9) in rows
    // 7 and 150, which send their blocks through the kernels' second pass.
    m.data[5 * kCols + 140] = 0x7F;
    m.data[9 * kCols + 996] = 0xFF;
    for (int64_t c = 10; c < 17; ++c)
      m.data[static_cast<size_t>(7 * kCols + c)] = static_cast<uint8_t>(c - 9);
    for (int64_t c = 300; c < 307; ++c)
      m.data[static_cast<size_t>(150 * kCols + c)] = static_cast<uint8_t>(0x80 | (c - 299));
    const auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
    if (!has_fused_row_dot_tokens(m.view)) {
      std::printf("  %s: no FP8 dot over several tokens at this level (they take the row path)\n",
                  std::string(cpu_level_name(level)).c_str());
      return;
    }
    for (bool round : {false, true}) {
      const ScopedIntDot mode(round);
      // Exact activations, and a level that measured no later start, take the GEMM from the usual
      // batch; the AVX-512 BF16 kernel with rounded activations from 48 tokens.
      const int64_t gemm_from = round && fused_row_dot_tokens_gemm_from(m.view) > 0
                                    ? fused_row_dot_tokens_gemm_from(m.view)
                                    : gemm_min_batch();
      for (int64_t n :
           {int64_t{2}, int64_t{3}, int64_t{5}, int64_t{9}, int64_t{15}, int64_t{33}, int64_t{47}}) {
        if (n >= gemm_from) continue;
        ASSERT_EQ(linear_path(m.view, kRows, n), LinearPath::FusedDot) << n;
        const std::vector<float> x = randn(n * kCols, static_cast<uint32_t>(30 + n));
        std::vector<float> y(static_cast<size_t>(n * kRows)), one(kRows);
        linear(m.view, x.data(), n, y.data());
        constexpr int64_t r0 = 61, nr = 101, ldy = 107;  // rows 61..161: an odd start, across row 128
        std::vector<float> part(static_cast<size_t>(n * ldy), -5.0f);
        linear_rows(m.view, r0, nr, x.data(), n, kCols, part.data(), ldy);
        for (int64_t t = 0; t < n; ++t) {
          linear(m.view, x.data() + t * kCols, 1, one.data());
          ASSERT_TRUE(std::isnan(one[5]) && std::isnan(one[9]) && !std::isnan(one[7]) &&
                      !std::isnan(one[150]));
          for (int64_t r = 0; r < kRows; ++r)
            ASSERT_TRUE(same(y[static_cast<size_t>(t * kRows + r)], one[static_cast<size_t>(r)]))
                << cpu_level_name(level) << " rounded " << round << " n=" << n << " token " << t << " row "
                << r;
          for (int64_t r = 0; r < ldy; ++r)
            ASSERT_TRUE(same(part[static_cast<size_t>(t * ldy + r)],
                             r < nr ? one[static_cast<size_t>(r0 + r)] : -5.0f))
                << cpu_level_name(level) << " rounded " << round << " n=" << n << " token " << t
                << " range row " << r;
        }
      }
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// One token over a range of rows (fused_row_dots: the checks and an FP8 row band's scales once
// for the range) gives each row what fused_row_dot gives it alone, bit for bit: a range that
// starts at an odd row and crosses the 128-row scale block, written with a stride.
TEST(Linear, FusedRowDotsGiveEachRowItsOwnDot) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F16, WeightType::F8_E4M3}) {
      constexpr int64_t kRows = 200, kCols = 1000, r0 = 61, nr = 101, ldo = 3;
      const Mat m = make(type, kRows, kCols);
      if (!has_fused_row_dot(m.view)) continue;
      for (bool round : {false, true}) {
        std::vector<float> buf;
        const std::vector<float> x0 = randn(kCols, 77);
        const float* x = fused_row_act(m.view, x0.data(), buf, round);
        std::vector<float> out(static_cast<size_t>(nr * ldo), -5.0f);
        ASSERT_TRUE(fused_row_dots(m.view, r0, nr, x, out.data(), ldo, round));
        for (int64_t r = 0; r < nr; ++r) {
          float one = 0;
          ASSERT_TRUE(fused_row_dot(m.view, r0 + r, x, one, round));
          ASSERT_EQ(out[static_cast<size_t>(r * ldo)], one)
              << cpu_level_name(level) << " " << weight_type_name(type) << " rounded " << round << " row "
              << r0 + r;
          ASSERT_EQ(out[static_cast<size_t>(r * ldo + 1)], -5.0f);  // the stride's gaps untouched
        }
      }
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// BF16 and F16 rows where the level widens one for several tokens (AVX2: a row by two tokens at a
// time; AVX-512: four rows by two): a batch below the GEMM's takes it, and each token gets exactly what the
// one-token dot gives it (the same sums in the same order), within f32 sums of the double
// reference — with a 13-column tail after the 32-wide steps, a 16-wide step, and a row range
// that starts at an odd row and leaves rows outside the blocks of four.
TEST(Linear, SixteenBitTokensShareARowReadAndKeepTheirOwnResults) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    for (WeightType type : {WeightType::BF16, WeightType::F16}) {
      constexpr int64_t kRows = 70, kCols = 301;  // 9 steps of 32, one of 16, 13 more
      const Mat m = make(type, kRows, kCols);
      if (!has_fused_row_dot_tokens(m.view)) {
        std::printf("  %s: no %s dot over several tokens at this level (they take the row path)\n",
                    std::string(cpu_level_name(level)).c_str(), std::string(weight_type_name(type)).c_str());
        continue;
      }
      for (int64_t n : {int64_t{2}, int64_t{3}, int64_t{5}, int64_t{9}, int64_t{15}}) {
        ASSERT_EQ(linear_path(m.view, kRows, n), LinearPath::FusedDot) << n;
        const std::vector<float> x = randn(n * kCols, static_cast<uint32_t>(60 + n));
        std::vector<float> y(static_cast<size_t>(n * kRows)), one(kRows), ref(y.size());
        linear(m.view, x.data(), n, y.data());
        linear_rows_ref(m.view, 0, kRows, x.data(), n, kCols, ref.data(), kRows);
        EXPECT_LT(test::nmse(ref, y), 1e-12) << weight_type_name(type) << " n=" << n;
        constexpr int64_t r0 = 7, nr = 61, ldy = 67;  // rows 7..67: 15 blocks of four, one row alone
        std::vector<float> part(static_cast<size_t>(n * ldy), -5.0f);
        linear_rows(m.view, r0, nr, x.data(), n, kCols, part.data(), ldy);
        for (int64_t t = 0; t < n; ++t) {
          linear(m.view, x.data() + t * kCols, 1, one.data());
          for (int64_t r = 0; r < kRows; ++r)
            ASSERT_EQ(y[static_cast<size_t>(t * kRows + r)], one[static_cast<size_t>(r)])
                << cpu_level_name(level) << " " << weight_type_name(type) << " n=" << n << " token " << t
                << " row " << r;
          for (int64_t r = 0; r < ldy; ++r)
            ASSERT_EQ(part[static_cast<size_t>(t * ldy + r)],
                      r < nr ? one[static_cast<size_t>(r0 + r)] : -5.0f)
                << cpu_level_name(level) << " " << weight_type_name(type) << " n=" << n << " token " << t
                << " range row " << r;
        }
      }
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// The fused FP8 dot with its activations as the default decode path allows (`rounded`: the AVX-512
// BF16 kernel rounds them to bf16) and as `--exact-dot` asks (exact products). Rounded stays
// within bf16 rounding of the exact product and shows it where that kernel runs; exact equals
// the reference up to f32 sums; a NaN activation gives NaN either way. Rows of 1000 columns
// leave a 40-column tail after the 64-code steps, and a partial last scale block.
TEST(Linear, Fp8FusedDotRoundsActivationsOnlyWhereAllowed) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    const bool bf16_kernel = level == CpuLevel::Avx512 && cpu_features().avx512bf16 && cpu_features().avx512vbmi;
    for (WeightType st : {WeightType::F32, WeightType::F8_E8M0}) {
      const Mat m = make(WeightType::F8_E4M3, 64, 1000, st);
      std::vector<float> x = randn(1000, 21);
      std::vector<float> ref(64), exact(64), rounded(64);
      linear_rows_ref(m.view, 0, 64, x.data(), 1, 1000, ref.data(), 64);
      ASSERT_EQ(linear_path(m.view, 64, 1), LinearPath::FusedDot);
      {
        const ScopedIntDot off(false);
        linear(m.view, x.data(), 1, exact.data());
      }
      {
        const ScopedIntDot on(true);
        linear(m.view, x.data(), 1, rounded.data());
      }
      const double e_exact = test::nmse(ref, exact), e_rounded = test::nmse(ref, rounded);
      std::printf("  %s, %s scales: FP8 fused dot NMSE exact %.2e, rounded %.2e\n",
                  std::string(cpu_level_name(level)).c_str(), std::string(weight_type_name(st)).c_str(), e_exact,
                  e_rounded);
      EXPECT_LT(e_exact, 1e-12) << cpu_level_name(level);
      EXPECT_LT(e_rounded, 1e-5) << cpu_level_name(level);
      if (bf16_kernel) {
        EXPECT_GT(e_rounded, 1e-9) << "the bf16 rounding must show";
      }
      for (bool round : {false, true}) {
        const ScopedIntDot mode(round);
        for (int64_t at : {int64_t{5}, int64_t{997}}) {
          std::vector<float> xn = randn(1000, 21);
          xn[static_cast<size_t>(at)] = NAN;
          linear(m.view, xn.data(), 1, rounded.data());
          for (float v : rounded) EXPECT_TRUE(std::isnan(v)) << cpu_level_name(level) << " NaN activation at " << at;
        }
      }
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// Every finite E4M3 code through the fused FP8 dot, exactly: one row holding all codes (so each
// 32-code step mixes subnormals, zeros and normals), read by one-hot activations. The vector
// kernels build each code's value without a conversion instruction and read activations in
// their own order (fused_row_act); a wrong table entry, subnormal or order shows here.
TEST(Linear, Fp8FusedDotIsExactForEveryCode) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    const int64_t cols = 256 + 19;  // and a scalar tail
    // Each code at every eighth byte position of a 32-code step across the shifts (tables
    // are per 128-bit lane).
    for (int64_t shift : {0, 8, 16, 24}) {
      std::vector<uint8_t> codes(static_cast<size_t>(cols));
      for (int64_t i = 0; i < cols; ++i) {
        const auto c = static_cast<uint8_t>(((i + shift) * 97 + 5) % 256);  // a permutation of the 256 codes
        codes[static_cast<size_t>(i)] = (c & 0x7F) == 0x7F ? 0x3C : c;
      }
      for (float scale : {1.0f, 0.0371f}) {
        std::vector<uint8_t> sc(4 * 3);
        for (int b = 0; b < 3; ++b) std::memcpy(sc.data() + 4 * b, &scale, 4);
        const WeightView v{WeightType::F8_E4M3, codes.data(), 1, cols, sc.data(), WeightType::F32};
        ASSERT_EQ(linear_path(v, 1, 1), LinearPath::FusedDot) << cpu_level_name(level);
        std::vector<float> x(static_cast<size_t>(cols), 0.0f);
        for (int64_t p = 0; p < cols; ++p) {
          x[static_cast<size_t>(p)] = 1.0f;
          float y = 0;
          linear(v, x.data(), 1, &y);
          EXPECT_EQ(y, e4m3_to_f32(codes[static_cast<size_t>(p)]) * scale)
              << cpu_level_name(level) << " code " << int(codes[static_cast<size_t>(p)]) << " at " << p;
          x[static_cast<size_t>(p)] = 0.0f;
        }
      }
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// F32, BF16 and F16 rows of one or two tokens go through the fused dots (widened in registers),
// at every level, over lengths that leave 8-wide steps and scalar tails; a NaN weight gives a
// NaN product there as it does widened.
TEST(Linear, FloatRowsOfOneOrTwoTokensUseTheFusedDot) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    for (WeightType t : {WeightType::F32, WeightType::BF16, WeightType::F16})
      for (int64_t cols : {int64_t{5}, int64_t{40}, int64_t{77}, int64_t{2053}}) {
        Mat m = make(t, 6, cols);
        for (int64_t n : {int64_t{1}, int64_t{2}}) {
          ASSERT_EQ(linear_path(m.view, 6, n), LinearPath::FusedDot) << cpu_level_name(level);
          const std::vector<float> x = randn(n * cols, 13);
          std::vector<float> y(static_cast<size_t>(n * 6)), ref(y.size());
          linear(m.view, x.data(), n, y.data());
          linear_rows_ref(m.view, 0, 6, x.data(), n, cols, ref.data(), 6);
          EXPECT_LT(test::nmse(ref, y), 1e-12) << cpu_level_name(level) << " " << weight_type_name(t) << " " << cols;
        }
        const size_t at = static_cast<size_t>(3 * cols + cols - 1), bytes = t == WeightType::F32 ? 4 : 2;
        const uint32_t nan = t == WeightType::F32 ? 0x7FC00000u : t == WeightType::BF16 ? 0x7FC0u : 0x7E00u;
        std::memcpy(m.data.data() + at * bytes, &nan, bytes);  // row 3's last column (little-endian)
        const std::vector<float> x = randn(cols, 14);
        std::vector<float> y(6);
        linear(m.view, x.data(), 1, y.data());
        EXPECT_TRUE(std::isnan(y[3]) && std::isfinite(y[2])) << cpu_level_name(level) << " " << weight_type_name(t);
      }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// The attention helpers at every level against plain loops, over lengths that leave tails.
TEST(Linear, DotAndAxpyMatchPlainLoopsAtEveryLevel) {
  const CpuLevel saved = dispatch_level();
  for (CpuLevel level : {CpuLevel::Scalar, CpuLevel::Avx2, CpuLevel::Avx512}) {
    if (set_dispatch_level(level) != level) continue;
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{64}, int64_t{577}}) {
      const std::vector<float> a = randn(n, 1), b = randn(n, 2);
      double ref = 0;
      for (int64_t i = 0; i < n; ++i) ref += static_cast<double>(a[static_cast<size_t>(i)]) * b[static_cast<size_t>(i)];
      EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-5 * (1 + std::sqrt(static_cast<double>(n))))
          << cpu_level_name(level) << " n=" << n;
      std::vector<float> y = b, want = b;
      axpy_f32(0.37f, a.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) want[static_cast<size_t>(i)] += 0.37f * a[static_cast<size_t>(i)];
      for (int64_t i = 0; i < n; ++i)
        EXPECT_NEAR(y[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-6f) << cpu_level_name(level);
    }
  }
  set_dispatch_level(saved);
}

// The read-bandwidth probe's sum at every level against a plain loop (wrapping), over lengths
// that leave vector steps and tails.
TEST(Linear, ReadProbeSumMatchesAPlainLoopAtEveryLevel) {
  std::vector<uint64_t> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0x9E3779B97F4A7C15ull * (i + 1);  // sums wrap
  test::for_each_level([&](CpuLevel level) {
    for (int64_t n : {int64_t{0}, int64_t{3}, int64_t{16}, int64_t{37}, int64_t{1000}}) {
      uint64_t want = 0;
      for (int64_t i = 0; i < n; ++i) want += v[static_cast<size_t>(i)];
      EXPECT_EQ(sum_u64(v.data(), n), want) << cpu_level_name(level) << " n=" << n;
    }
  });
}

TEST(Linear, MalformedViewsAreRejected) {
  std::vector<uint8_t> buf(1024);
  EXPECT_THROW(check_weight_view({WeightType::Q4_K, buf.data(), 2, 100}), std::invalid_argument);
  EXPECT_THROW(check_weight_view({WeightType::MXFP4, buf.data(), 2, 64}), std::invalid_argument);  // no scales
  EXPECT_THROW(check_weight_view({WeightType::F32, nullptr, 2, 64}), std::invalid_argument);
  EXPECT_NO_THROW(check_weight_view({WeightType::Q8_0, buf.data(), 2, 64}));
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// Every dispatch level this CPU has: the vector row kernels against the scalar dequantizers,
// and the products against the f64 reference.
TEST(LinearDispatch, EveryLevelMatchesTheScalarTwin) {
  const ScopedIntDot exact(false);  // the f32 path; the integer dot has its own tests (test_qdot.cpp)
  const CpuLevel saved = dispatch_level();
  for (CpuLevel level : {CpuLevel::Scalar, CpuLevel::Avx2, CpuLevel::Avx512}) {
    if (set_dispatch_level(level) != level) {
      std::printf("  (%s not available on this CPU: skipped)\n", std::string(cpu_level_name(level)).c_str());
      continue;
    }
    for (const Case& c : cases()) {
      const Mat m = make(c.type, c.rows, c.cols, c.scale_type);
      std::vector<float> fast(static_cast<size_t>(c.cols)), ref(fast.size());
      for (int64_t r : {int64_t{0}, c.rows / 2, c.rows - 1}) {
        dequant_row(m.view, r, fast.data());
        dequantize_rows(m.view, r, 1, ref.data());
        EXPECT_EQ(fast, ref) << cpu_level_name(level) << " " << weight_type_name(c.type) << " row " << r;
      }
      // A run of rows in one call (dequant_rows), from mid-matrix: each row as alone.
      const int64_t r0 = c.rows / 3, nr = c.rows - r0;
      std::vector<float> run(static_cast<size_t>(nr * c.cols), -1.0f);
      dequant_rows(m.view, r0, nr, run.data());
      for (int64_t r = 0; r < nr; ++r) {
        dequant_row(m.view, r0 + r, fast.data());
        EXPECT_TRUE(std::equal(fast.begin(), fast.end(), run.begin() + r * c.cols))
            << cpu_level_name(level) << " " << weight_type_name(c.type) << " run row " << r0 + r;
      }
      for (int64_t n : {1, 5}) {
        const std::vector<float> x = randn(n * c.cols, 13);
        std::vector<float> y(static_cast<size_t>(n * c.rows)), yr(y.size());
        linear(m.view, x.data(), n, y.data());
        linear_rows_ref(m.view, 0, c.rows, x.data(), n, c.cols, yr.data(), c.rows);
        EXPECT_LT(test::nmse(yr, y), 1e-10) << cpu_level_name(level) << " " << weight_type_name(c.type);
      }
    }
    // Every E4M3 code (NaN codes included) through the vector path, with a power-of-two and
    // an arbitrary block scale.
    for (float scale : {1.0f, 0.0371f}) {
      std::vector<uint8_t> codes(256 + 7);
      for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 37 % 256);
      for (int i = 0; i < 256; ++i) codes[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
      std::vector<uint8_t> sc(4 * 3);
      for (int b = 0; b < 3; ++b) std::memcpy(sc.data() + 4 * b, &scale, 4);
      const WeightView v{WeightType::F8_E4M3, codes.data(), 1, int64_t(codes.size()), sc.data(), WeightType::F32};
      std::vector<float> got(codes.size());
      dequant_row(v, 0, got.data());
      for (size_t i = 0; i < codes.size(); ++i) {
        const float want = e4m3_to_f32(codes[i]) * scale;
        if (std::isnan(want)) {
          EXPECT_TRUE(std::isnan(got[i])) << cpu_level_name(level) << " code " << int(codes[i]);
        } else {
          EXPECT_EQ(got[i], want) << cpu_level_name(level) << " code " << int(codes[i]);
        }
      }
    }
    // Odd lengths exercise the vector tails.
    for (int64_t n : {1, 7, 8, 9, 31, 33, 65, 100}) {
      const std::vector<float> a = randn(n, 21), b = randn(n, 22);
      double ref = 0;
      for (int64_t i = 0; i < n; ++i) ref += double(a[i]) * b[i];
      EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 1e-4 * (1 + std::fabs(ref))) << n;
    }
  }
  set_dispatch_level(saved);
}

}  // namespace
}  // namespace strata
