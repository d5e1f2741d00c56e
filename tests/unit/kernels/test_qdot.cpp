// The integer dot path (qdot.h): activation quantization, every dispatch level against the
// scalar twin, the documented error against the exact f64 product, and linear() using it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/gemm_onednn.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/quantize.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::Mat;
using test::randn;

Mat make(WeightType t, int64_t rows, int64_t cols, uint32_t seed = 7) {
  return test::make_matrix(t, rows, cols, WeightType::F32, seed);
}

// Activations with the awkward cases: a block of zeros, an outlier, tiny values.
std::vector<float> activations(int64_t n, uint32_t seed) {
  std::vector<float> x = randn(n, seed);
  for (int i = 0; i < 32 && i < n; ++i) x[static_cast<size_t>(i)] = 0;
  if (n > 40) x[40] = 60.0f;
  if (n > 100)
    for (int i = 64; i < 96; ++i) x[static_cast<size_t>(i)] *= 1e-6f;
  return x;
}

struct Case {
  WeightType type;
  int64_t rows, cols;
};
const Case kCases[] = {{WeightType::Q8_0, 13, 96},
                       {WeightType::Q8_0, 5, 1056},
                       {WeightType::Q4_0, 11, 64},
                       {WeightType::Q4_0, 3, 2080},
                       {WeightType::Q4_K, 9, 256},
                       {WeightType::Q4_K, 4, 2304},
                       {WeightType::Q5_K, 7, 512},
                       {WeightType::Q5_K, 3, 1280},
                       {WeightType::Q6_K, 6, 256},
                       {WeightType::Q6_K, 3, 2048},
                       {WeightType::MXFP4, 9, 96},
                       {WeightType::MXFP4, 4, 2080},
                       {WeightType::Q4_1, 7, 96},
                       {WeightType::Q4_1, 3, 1056},
                       {WeightType::Q5_0, 9, 64},
                       {WeightType::Q5_0, 3, 2080},
                       {WeightType::Q5_1, 5, 224},
                       {WeightType::Q5_1, 2, 1056},
                       {WeightType::IQ4_NL, 6, 96},
                       {WeightType::IQ4_NL, 3, 2080},
                       {WeightType::Q2_K, 7, 256},
                       // A last group of 8 blocks holding whole groups of 128 and a block past them.
                       {WeightType::Q4_0, 4, 416},
                       {WeightType::Q5_0, 3, 416},
                       {WeightType::IQ4_NL, 4, 384},
                       {WeightType::Q2_K, 3, 2304},
                       {WeightType::Q3_K, 6, 512},
                       {WeightType::Q3_K, 3, 1280},
                       {WeightType::IQ4_XS, 5, 256},
                       {WeightType::IQ4_XS, 3, 2048},
                       {WeightType::IQ2_XXS, 5, 256},
                       {WeightType::IQ2_XXS, 3, 2048},
                       {WeightType::IQ2_XS, 6, 512},
                       {WeightType::IQ2_XS, 2, 1280},
                       {WeightType::IQ2_S, 5, 256},
                       {WeightType::IQ2_S, 3, 2304},
                       {WeightType::IQ3_XXS, 7, 256},
                       {WeightType::IQ3_XXS, 2, 1024},
                       {WeightType::IQ3_S, 4, 512},
                       {WeightType::IQ3_S, 3, 2048},
                       {WeightType::IQ1_S, 6, 256},
                       {WeightType::IQ1_S, 2, 2304},
                       {WeightType::IQ1_M, 5, 512},
                       {WeightType::IQ1_M, 3, 1280},
                       {WeightType::IQ1_M, 2, 2304},
                       // Rows of several super-blocks in one call (qd_rows_flat; IQ1's staged
                       // indices: more than one stage's worth).
                       {WeightType::IQ2_XXS, 9, 768},
                       {WeightType::IQ3_S, 6, 512},
                       {WeightType::IQ1_S, 5, 2560},
                       // More rows than one block of the row kernels' loop (qd_rows: 16 where the
                       // tokens take more than one group).
                       {WeightType::Q6_K, 37, 256}};

// Equal, or both NaN.
bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

TEST(QDot, ActivationScalesArePowersOfTwoApartInAGroupOf8Blocks) {
  std::vector<float> x(288, 0.0f);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i - 16) / 4;  // max |x| = 4
  x[64] = 1.5f;                                          // block 2: 1.5 · 2 <= 4 < 1.5 · 4: e = 1
  x[96] = -0.01f;                                        // block 3: under 4 / 64: e = 6
  x[256] = 2.0f;                                         // the second group: one block of its own
  ActQ8 a;
  quantize_act_q8(x.data(), 288, a);
  ASSERT_EQ(a.g.size(), 2u);
  ASSERT_EQ(a.m.size(), 9u);
  EXPECT_FLOAT_EQ(a.g[0], 4.0f / 127);
  EXPECT_FLOAT_EQ(a.g[1], 2.0f / 127);
  EXPECT_EQ(a.m[0], 64);
  EXPECT_EQ(a.m[2], 32);
  EXPECT_EQ(a.m[3], 1);
  EXPECT_EQ(a.m[8], 64);
  for (size_t b = 0; b < a.d.size(); ++b)  // d_b = g · m_b / 64 exactly
    EXPECT_EQ(a.d[b], a.g[b / 8] * a.m[b] / 64) << "block " << b;
  EXPECT_EQ(a.q[0], -127);
  EXPECT_EQ(a.q[16], 0);
  EXPECT_EQ(a.q[17], 8);     // 0.25 · 127 / 4 = 7.94 -> 8
  EXPECT_EQ(a.q[64], 95);    // 1.5 · 2 · 127 / 4 = 95.25
  EXPECT_EQ(a.q[96], -20);   // -0.01 · 64 · 127 / 4 = -20.32
  EXPECT_EQ(a.q[256], 127);
  for (int i = 32; i < 64; ++i) EXPECT_EQ(a.q[static_cast<size_t>(i)], 0) << "a zero block";
  int s0 = 0, s1 = 0;
  for (int i = 0; i < 16; ++i) s0 += a.q[static_cast<size_t>(i)];
  for (int i = 16; i < 32; ++i) s1 += a.q[static_cast<size_t>(i)];
  EXPECT_EQ(a.s[0], s0);
  EXPECT_EQ(a.s[1], s1);
  EXPECT_EQ(a.ds[2], a.d[2] * 95);
  EXPECT_THROW(quantize_act_q8(x.data(), 48, a), std::invalid_argument);
}

// The bound qdot.h states: a block's rounding step is at most twice its own max|x| / 127,
// unless its max|x| is under 1/64 of its group's; and every |q| <= 127.
TEST(QDot, ActivationStepIsAtMostTwiceTheBlocksOwn) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<float> x = randn(4096, seed);
    for (size_t i = 0; i < x.size(); ++i) x[i] *= std::exp2(static_cast<float>((i / 32 * 7 + seed) % 13) - 6);
    ActQ8 a;
    quantize_act_q8(x.data(), 4096, a);
    for (size_t b = 0; b < a.d.size(); ++b) {
      float own = 0, group = 0;
      for (size_t i = b * 32; i < b * 32 + 32; ++i) own = std::max(own, std::fabs(x[i]));
      for (size_t i = b / 8 * 256; i < b / 8 * 256 + 256; ++i) group = std::max(group, std::fabs(x[i]));
      if (own * 64 >= group)
        EXPECT_LE(a.d[b], 2 * own / 127 * 1.000001f) << "block " << b;
      else
        EXPECT_FLOAT_EQ(a.d[b], group / 127 / 64) << "block " << b;
      for (size_t i = b * 32; i < b * 32 + 32; ++i) {
        EXPECT_LE(std::abs(a.q[i]), 127) << "element " << i;
        EXPECT_LE(std::fabs(x[i] - a.d[b] * a.q[i]), a.d[b] / 2 * 1.0001f) << "element " << i;
      }
    }
  }
}

// A group holding a NaN or an infinity gives NaN products (not a finite number); a group of
// values under 2^-100 quantizes to zeros.
TEST(QDot, NonFiniteActivationsGiveNaNAndTinyOnesZero) {
  for (const Case& c : kCases) {
    const Mat m = make(c.type, 2, c.cols);
    std::vector<float> x = randn(c.cols, 4);
    x[static_cast<size_t>(c.cols - 1)] = std::nanf("");
    std::vector<float> y = randn(c.cols, 4);
    y[0] = -INFINITY;
    test::for_each_level([&](CpuLevel level) {
      ActQ8 a, b;
      quantize_act_q8(x.data(), c.cols, a);
      quantize_act_q8(y.data(), c.cols, b);
      EXPECT_TRUE(std::isnan(qdot_row(m.view, 1, a))) << cpu_level_name(level) << " " << weight_type_name(c.type);
      EXPECT_TRUE(std::isnan(qdot_row(m.view, 1, b))) << cpu_level_name(level) << " " << weight_type_name(c.type);
    });
  }
  std::vector<float> x = randn(512, 5);
  for (size_t i = 0; i < 256; ++i) x[i] *= 1e-31f;
  ActQ8 a;
  quantize_act_q8(x.data(), 512, a);
  EXPECT_EQ(a.g[0], 0.0f);
  for (size_t i = 0; i < 256; ++i) EXPECT_EQ(a.q[i], 0);
  EXPECT_GT(a.g[1], 0.0f);
}

// Prints the activation rounding error (||x - x̂||² / ||x||²: a product's NMSE with random
// weights) beside what one scale per block of 32 and one per 256 would give, for the kinds of
// activations a model has; checks that it stays within 2x (step) squared of per-32's.
TEST(QDot, ActivationRoundingErrorBesidePerBlockAndPer256Scales) {
  auto err = [](const std::vector<float>& x, int64_t block) {  // plain absmax scales per block
    double e = 0, t = 0;
    for (size_t b0 = 0; b0 < x.size(); b0 += static_cast<size_t>(block)) {
      float a = 0;
      for (size_t i = b0; i < b0 + static_cast<size_t>(block); ++i) a = std::max(a, std::fabs(x[i]));
      const float d = a / 127, id = a > 0 ? 127 / a : 0;
      for (size_t i = b0; i < b0 + static_cast<size_t>(block); ++i) {
        const double r = x[i] - d * std::nearbyint(x[i] * id);
        e += r * r;
        t += static_cast<double>(x[i]) * x[i];
      }
    }
    return e / t;
  };
  const int64_t n = 7168 * 16;
  const std::vector<float> g = randn(n, 11), u = randn(n, 12);
  std::vector<std::pair<const char*, std::vector<float>>> kinds = {{"gaussian", g}, {"silu(2g)*u", g}, {"outlier channels", g}};
  for (int64_t i = 0; i < n; ++i) {
    const float z = 2 * g[static_cast<size_t>(i)];
    kinds[1].second[static_cast<size_t>(i)] = z / (1 + std::exp(-z)) * u[static_cast<size_t>(i)];
    if (i % 7168 == 5 || i % 7168 == 900) kinds[2].second[static_cast<size_t>(i)] *= 40;
  }
  for (const auto& [name, x] : kinds) {
    ActQ8 a;
    double e = 0, t = 0;
    for (int64_t r = 0; r < n; r += 7168) {
      quantize_act_q8(x.data() + r, 7168, a);
      for (int64_t i = 0; i < 7168; ++i) {
        const double v = x[static_cast<size_t>(r + i)];
        const double dv = v - a.d[static_cast<size_t>(i / 32)] * a.q[static_cast<size_t>(i)];
        e += dv * dv;
        t += v * v;
      }
    }
    const double ours = e / t, per32 = err(x, 32), per256 = err(x, 256);
    std::printf("  %-17s activation NMSE %.2e   one scale per 32: %.2e   per 256: %.2e\n", name, ours, per32, per256);
    EXPECT_LE(ours, 4 * per32) << name;
    EXPECT_GE(ours, per32) << name;
  }
}

// qx (IQ2_XXS's row dot on AVX-512 VBMI): per group of 256, run 8r + j of the copy (r < 4, j <
// 8) is run 4j + r of q; a last group shorter than 256 is q's.
TEST(QDot, TransposedCopyHoldsTheRunsOfEightInItsOrder) {
  const int64_t n = 2 * 256 + 96;
  const std::vector<float> x = randn(n, 11);
  ActQ8 a;
  quantize_act_q8(x.data(), n, a, kActQx);
  ASSERT_EQ(a.qx.size(), static_cast<size_t>(n));
  for (int64_t g = 0; g < 512; g += 256)
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 8; ++j)
        for (int e = 0; e < 8; ++e)
          ASSERT_EQ(a.qx[static_cast<size_t>(g + 64 * r + 8 * j + e)],
                    a.q[static_cast<size_t>(g + 32 * j + 8 * r + e)])
              << "group " << g / 256 << " run " << 8 * r + j;
  for (int64_t i = 512; i < n; ++i) ASSERT_EQ(a.qx[static_cast<size_t>(i)], a.q[static_cast<size_t>(i)]) << i;
  EXPECT_EQ(act_orders_for(WeightType::IQ2_XXS), unsigned{kActQx});
}

// Every dispatch level must give the scalar twin's bytes (the dot kernels are compared on the
// same activations, and decode must not depend on the CPU): odd block counts (an unpaired last
// block in qp), zero blocks, outliers, values on rounding ties, huge and tiny magnitudes.
TEST(QDot, EveryLevelQuantizesActivationsToTheScalarBytes) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    for (int64_t n : {32, 64, 96, 224, 2080, 7168}) {
      std::vector<float> x = activations(n, static_cast<uint32_t>(n));
      if (n >= 96) {  // max|x| = 127: x · 127 / max|x| = x, every other value a .5 tie
        for (int i = 0; i < 32; ++i) x[static_cast<size_t>(64 + i)] = static_cast<float>(i) - 15.5f;
        x[64] = 127.0f;
      }
      if (n >= 224) x[200] = 3e38f, x[201] = -1e-38f;
      if (n >= 2080) x[300] *= 1e-3f, x[1000] = std::nanf(""), x[1600] = INFINITY;  // one NaN and one inf group
      if (n >= 7168) std::fill(x.begin() + 2048, x.begin() + 2304, 1e-33f);        // a group under 2^-100
      ActQ8 fast, twin;
      quantize_act_q8(x.data(), n, fast);
      quantize_act_q8_scalar(x.data(), n, twin);
      ASSERT_EQ(fast.q, twin.q) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.qp, twin.qp) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.qk, twin.qk) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.q16, twin.q16) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.qe, twin.qe) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.qx, twin.qx) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.s, twin.s) << cpu_level_name(level) << " n=" << n;
      ASSERT_TRUE(same_floats(fast.d, twin.d)) << cpu_level_name(level) << " n=" << n;
      ASSERT_TRUE(same_floats(fast.ds, twin.ds)) << cpu_level_name(level) << " n=" << n;
      ASSERT_TRUE(same_floats(fast.g, twin.g)) << cpu_level_name(level) << " n=" << n;
      ASSERT_EQ(fast.m, twin.m) << cpu_level_name(level) << " n=" << n;
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

TEST(QDot, EveryLevelMatchesTheScalarTwin) {
  const int levels = test::for_each_vector_level([&](CpuLevel level) {
    if (level == CpuLevel::Avx512)
      std::printf(
          "  avx512: VNNI %s, VBMI %s\n", cpu_features().avx512vnni ? "yes" : "no (AVX2 kernels)",
          kernel_choice<&KernelChoices::avx512_vbmi>() && test::avx512_has_vbmi_table() ? "yes" : "no");
    for (const Case& c : kCases) {
      const Mat m = make(c.type, c.rows, c.cols);
      ActQ8 a;
      quantize_act_q8(activations(c.cols, 3).data(), c.cols, a);
      std::vector<float> fast, twin;
      for (int64_t r = 0; r < c.rows; ++r) {
        fast.push_back(qdot_row(m.view, r, a));
        twin.push_back(qdot_row_scalar(m.view, r, a));
      }
      EXPECT_LT(test::nmse(twin, fast), 1e-11) << cpu_level_name(level) << " " << weight_type_name(c.type) << " "
                                               << c.rows << "x" << c.cols;
    }
  });
  if (levels == 0) GTEST_SKIP() << "no vector dispatch level on this CPU";
}

// Tokens sharing one pass over a row get exactly what each would get alone, at every level
// and every group size (1..4 per kernel call, and the remainder); so do rows done as a range.
TEST(QDot, TokensSharingARowGetTheirOwnResults) {
  test::for_each_level([&](CpuLevel level) {
    for (const Case& c : kCases) {
      const Mat m = make(c.type, c.rows, c.cols);
      std::vector<ActQ8> acts(9);
      for (size_t t = 0; t < acts.size(); ++t)
        quantize_act_q8(activations(c.cols, static_cast<uint32_t>(40 + t)).data(), c.cols, acts[t]);
      for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{9}}) {
        const int64_t r = c.rows - 1;
        std::vector<float> together(static_cast<size_t>(2 * n), -1.0f);
        qdot_rows_tokens(m.view, r, 1, acts.data(), n, together.data(), 2);
        for (int64_t t = 0; t < n; ++t)
          EXPECT_EQ(together[static_cast<size_t>(2 * t)], qdot_row(m.view, r, acts[static_cast<size_t>(t)]))
              << cpu_level_name(level) << " " << weight_type_name(c.type) << " n=" << n << " t=" << t;
        EXPECT_EQ(together[1], -1.0f) << "the stride is kept";
        // A range of rows in one call: row i of token t at t * (rows + 1) + i.
        const int64_t stride = c.rows + 1;
        std::vector<float> all(static_cast<size_t>(n * stride), -1.0f);
        qdot_rows_tokens(m.view, 1, c.rows - 1, acts.data(), n, all.data(), stride);
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t i = 0; i + 1 < c.rows; ++i)
            EXPECT_EQ(all[static_cast<size_t>(t * stride + i)], qdot_row(m.view, 1 + i, acts[static_cast<size_t>(t)]))
                << cpu_level_name(level) << " " << weight_type_name(c.type) << " n=" << n << " row " << 1 + i;
          EXPECT_EQ(all[static_cast<size_t>(t * stride + c.rows - 1)], -1.0f) << "only the range is written";
        }
      }
    }
  });
}

// The tiles of 16 rows (qdot_rows_tiled): against the scalar twin for every row and token, over
// partial tiles and more tokens than one pass takes; and a row's result independent of where
// its tile starts and of the other tokens of the call (the products of a batch must not depend
// on how the rows are split among threads).
TEST(QDot, TilesMatchTheScalarTwinAndDoNotDependOnTheirNeighbours) {
  const CpuLevel saved = dispatch_level();
  bool ran = false;
  // AVX2 twice where the CPU has AVX-VNNI: its tiles on vpmaddubsw (and vpsignb), then on vpdpbusd;
  // AVX-512 twice where it has VBMI: the lattice decoders on VBMI, then without.
  for (const auto& [level, extra] :
       {std::pair{CpuLevel::Scalar, false}, std::pair{CpuLevel::Avx2, false}, std::pair{CpuLevel::Avx2, true},
        std::pair{CpuLevel::Avx512, true}, std::pair{CpuLevel::Avx512, false}}) {
    if (set_dispatch_level(level) != level) continue;
    if (level == CpuLevel::Avx2 && extra && !cpu_features().avxvnni) {
      std::printf("  avx2: no AVX-VNNI on this CPU, its tiles untested here\n");
      continue;
    }
    if (level == CpuLevel::Avx512 && !extra && !test::avx512_has_vbmi_table())
      continue;  // one AVX-512 table here
    KernelChoices choices = kernel_choices();
    choices.avx_vnni = level != CpuLevel::Avx2 || extra;
    choices.avx512_vbmi = level != CpuLevel::Avx512 || extra;
    const ScopedKernelChoices scoped(choices);
    const char* variant = level == CpuLevel::Avx2 && extra      ? " (AVX-VNNI)"
                          : level == CpuLevel::Avx512 && !extra ? " (no VBMI)"
                                                                : "";
    SCOPED_TRACE(std::string(cpu_level_name(level)) + variant);
    for (WeightType type : {WeightType::Q4_K, WeightType::Q5_K, WeightType::Q6_K, WeightType::Q2_K, WeightType::Q3_K,
                            WeightType::Q8_0, WeightType::IQ4_XS, WeightType::MXFP4, WeightType::Q4_0,
                            WeightType::Q4_1, WeightType::Q5_0, WeightType::Q5_1, WeightType::IQ4_NL, WeightType::IQ2_XXS,
                            WeightType::IQ2_XS, WeightType::IQ2_S, WeightType::IQ3_XXS, WeightType::IQ3_S,
                            WeightType::IQ1_S, WeightType::IQ1_M}) {
      if (!qdot_tiles_supported(type)) {
        std::printf("  %s%s %s: no tiles at this level\n", std::string(cpu_level_name(level)).c_str(),
                    variant, std::string(weight_type_name(type)).c_str());
        continue;
      }
      ran = true;
      for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{37, 512}, std::pair<int64_t, int64_t>{20, 2304}}) {
        const Mat m = make(type, rows, cols, 11);
        const int64_t n = 133;  // passes of 64 tokens and a last of 5 (the lattice types: 128 and 5)
        std::vector<ActQ8> acts(static_cast<size_t>(n));
        for (int64_t t = 0; t < n; ++t)
          quantize_act_q8(activations(cols, static_cast<uint32_t>(70 + t)).data(), cols, acts[static_cast<size_t>(t)]);
        std::vector<float> tiled(static_cast<size_t>(n * rows)), twin(tiled.size());
        qdot_rows_tiled(m.view, 0, rows, acts.data(), n, tiled.data(), rows);
        for (int64_t t = 0; t < n; ++t)
          for (int64_t r = 0; r < rows; ++r)
            twin[static_cast<size_t>(t * rows + r)] = qdot_row_scalar(m.view, r, acts[static_cast<size_t>(t)]);
        EXPECT_LT(test::nmse(twin, tiled), 1e-11) << weight_type_name(type) << " " << rows << "x" << cols;
        // Rows 3.. as their own tiles (every tile boundary moves), tokens 5..9 alone.
        const int64_t r0 = 3, nr = rows - 3, t0 = 5, nt = 5;
        std::vector<float> part(static_cast<size_t>(nt * nr));
        qdot_rows_tiled(m.view, r0, nr, acts.data() + t0, nt, part.data(), nr);
        for (int64_t t = 0; t < nt; ++t)
          for (int64_t r = 0; r < nr; ++r)
            ASSERT_EQ(part[static_cast<size_t>(t * nr + r)], tiled[static_cast<size_t>((t0 + t) * rows + r0 + r)])
                << weight_type_name(type) << " row " << r0 + r << " token " << t0 + t;
        // One token alone (a decode step over the tiled layout; Q2_K's tiles decode it without
        // their scale tables): the twin's results too.
        std::vector<float> one(static_cast<size_t>(rows));
        qdot_rows_tiled(m.view, 0, rows, acts.data() + 7, 1, one.data(), rows);
        EXPECT_LT(test::nmse(std::vector<float>(twin.begin() + 7 * rows, twin.begin() + 8 * rows), one),
                  1e-11)
            << weight_type_name(type) << " " << rows << "x" << cols << ", one token";
      }
      // linear() on 9 tokens (or the type's smallest batch for tiles) takes the tiles, whatever
      // rows its tasks get: the same bits; below that batch, the row kernels.
      {
        const Mat m = make(type, 53, 512, 12);
        const int64_t n = std::max<int64_t>(9, qdot_tiles_min_batch(type));
        EXPECT_EQ(linear_path(m.view, 53, qdot_tiles_min_batch(type) - 1), LinearPath::IntDot);
        const std::vector<float> x = randn(n * 512, 5);
        std::vector<ActQ8> acts(static_cast<size_t>(n));
        for (int64_t t = 0; t < n; ++t) quantize_act_q8(x.data() + t * 512, 512, acts[static_cast<size_t>(t)]);
        std::vector<float> y(static_cast<size_t>(n * 53)), want(y.size());
        ASSERT_EQ(linear_path(m.view, 53, n), LinearPath::IntDotTiles);
        linear(m.view, x.data(), n, y.data());
        qdot_rows_tiled(m.view, 0, 53, acts.data(), n, want.data(), 53);
        EXPECT_EQ(y, want) << weight_type_name(type);
      }
      // The largest sums (every quant and scale at its top, every activation ±127 with multiplier 64).
      Mat big = make(type, 16, 512);
      std::fill(big.data.begin(), big.data.end(), uint8_t{0xFF});
      const int64_t bytes = row_bytes(type, 512), blk = bytes / 2;
      // d = 1 and dmin = 0 where each type keeps them; Q6_K's scales -128.
      const int d_at = type == WeightType::Q2_K ? 80 : type == WeightType::Q3_K ? 108 : type == WeightType::Q6_K ? 208 : 0;
      // The blocks of 32: d = 1 in every block (Q4_1 / Q5_1: m = 0; Q8_0: quants 127).
      const size_t small = type == WeightType::Q8_0                                    ? 34
                           : type == WeightType::Q4_0 || type == WeightType::IQ4_NL ? 18
                           : type == WeightType::Q4_1                                ? 20
                           : type == WeightType::Q5_0                                ? 22
                           : type == WeightType::Q5_1                                ? 24
                                                                                     : 0;
      for (size_t b = 0; small && b < big.data.size(); b += small) {
        big.data[b] = 0x00, big.data[b + 1] = 0x3C;
        if (type == WeightType::Q4_1 || type == WeightType::Q5_1) big.data[b + 2] = big.data[b + 3] = 0x00;
        if (type == WeightType::Q8_0)
          std::fill(big.data.begin() + static_cast<int64_t>(b) + 2, big.data.begin() + static_cast<int64_t>(b) + 34, uint8_t{0x7F});
      }
      if (type == WeightType::MXFP4) std::fill(big.scale.begin(), big.scale.end(), uint8_t{127});  // 2^0 each block
      for (int64_t b = 0; b < 32 && !small && type != WeightType::MXFP4; ++b) {
        uint8_t* p = big.data.data() + b * blk;
        p[d_at] = 0x00, p[d_at + 1] = 0x3C;
        if (type != WeightType::Q3_K && type != WeightType::Q6_K) p[d_at + 2] = 0x00, p[d_at + 3] = 0x00;
        if (type == WeightType::Q6_K) std::fill(p + 192, p + 208, uint8_t{0x80});
        if (type == WeightType::IQ1_M)  // d = 1 in the top nibbles of its four scale words
          p[49] = 0x0F, p[51] = 0x0F, p[53] = 0xCF, p[55] = 0x3F;
      }
      for (float sign : {1.0f, -1.0f}) {
        const std::vector<float> ones(512, sign);
        ActQ8 a;
        quantize_act_q8(ones.data(), 512, a);
        std::vector<float> y(16);
        qdot_rows_tiled(big.view, 0, 16, &a, 1, y.data(), 16);
        const float want = qdot_row_scalar(big.view, 0, a);
        if (type == WeightType::Q4_K || type == WeightType::Q5_K) {
          EXPECT_EQ(want, sign * (type == WeightType::Q4_K ? 15.0f : 31.0f) * 63 * 512);
        }
        for (float v : y) EXPECT_NEAR(v, want, std::fabs(want) * 1e-6f) << weight_type_name(type) << " sign " << sign;
      }
    }
  }
  set_dispatch_level(saved);
  if (!ran) std::printf("  (no level with tiles on this CPU: nothing to compare)\n");
}

// The largest sums the kernels can meet: every weight at its top value and every sub-block
// scale at its extreme (Q6_K: -128; MXFP4: ±12, unsigned 24 or 0 in vpmaddubsw), activations
// all of one magnitude (every block multiplier 64, every q ±127). The vector kernels sum in
// int16 pairs and int32: they must still equal the scalar twin's sums.
TEST(QDot, ExtremeBlocksDoNotOverflowTheIntegerSums) {
  for (WeightType t : {WeightType::Q4_K, WeightType::Q5_K, WeightType::Q6_K, WeightType::MXFP4}) {
    for (uint8_t mx : {uint8_t{0x77}, uint8_t{0xFF}}) {  // MXFP4: all +12, all -12 (others: once)
      if (t != WeightType::MXFP4 && mx == 0xFF) continue;
      Mat m = make(t, 2, 512);
      if (t == WeightType::MXFP4) {
        std::fill(m.data.begin(), m.data.end(), mx);
        std::fill(m.scale.begin(), m.scale.end(), uint8_t{127});  // 2^0
      }
      const int64_t bytes = row_bytes(t, 512);
      for (int64_t sb = 0; sb < 4 && t != WeightType::MXFP4; ++sb) {
        uint8_t* blk = m.data.data() + sb * (bytes / 2);
        std::fill(blk, blk + bytes / 2, uint8_t{0xFF});  // Q4_K / Q5_K: scales and mins 63, q 15 / 31
        if (t == WeightType::Q6_K) {
          std::fill(blk + 192, blk + 208, uint8_t{0x80});  // scales -128, q 63
          blk[208] = 0x00, blk[209] = 0x3C;                // d = 1
        } else {
          blk[0] = 0x00, blk[1] = 0x3C;  // d = 1
          blk[2] = 0x00, blk[3] = 0x00;  // dmin = 0
        }
      }
      for (float sign : {1.0f, -1.0f}) {
        const std::vector<float> x(512, sign);
        ActQ8 a;
        quantize_act_q8(x.data(), 512, a);
        ASSERT_EQ(a.m[0], 64);
        ASSERT_EQ(a.q[0], sign > 0 ? 127 : -127);
        const float twin = qdot_row_scalar(m.view, 0, a);
        test::for_each_vector_level([&](CpuLevel level) {
          EXPECT_NEAR(qdot_row(m.view, 0, a), twin, std::fabs(twin) * 1e-6f)
              << cpu_level_name(level) << " " << weight_type_name(t) << " sign " << sign;
          if (qdot_tiles_supported(t)) {
            float tiled[2];
            qdot_rows_tiled(m.view, 0, 2, &a, 1, tiled, 2);
            EXPECT_NEAR(tiled[0], twin, std::fabs(twin) * 1e-6f)
                << cpu_level_name(level) << " " << weight_type_name(t) << " tiles, sign " << sign;
          }
        });
      }
    }
  }
}

// The same for the lower-bit super-blocks, each at its largest integer sums: Q2_K every quant
// 3 with scales and mins 15; Q3_K every quant 7 with every scale −32; IQ4_XS every level −127
// with every scale −32 (d = 1 each, Q2_K's dmin 0); three lattice i-quants at their largest
// scales.
TEST(QDot, ExtremeLowBitBlocksDoNotOverflowTheIntegerSums) {
  struct Extreme {
    WeightType type;
    int bytes, d_at;
    uint8_t fill, scale_fill;
    int scale_at, scale_bytes;
  };
  const Extreme cases[] = {{WeightType::Q2_K, 84, 80, 0xFF, 0xFF, 0, 16},
                           {WeightType::Q3_K, 110, 108, 0xFF, 0x00, 96, 12},
                           {WeightType::IQ4_XS, 136, 0, 0x00, 0x00, 2, 6},
                           // Every byte 0xFF: the last codebook points, all scales 15 (odd 31), and
                           // IQ3_XXS's levels reach 62.
                           {WeightType::IQ3_XXS, 98, 0, 0xFF, 0xFF, 2, 0},
                           {WeightType::IQ2_XS, 74, 0, 0xFF, 0xFF, 2, 0},
                           {WeightType::IQ2_XXS, 66, 0, 0xFF, 0xFF, 2, 0},
                           {WeightType::IQ2_S, 82, 0, 0xFF, 0xFF, 2, 0},
                           {WeightType::IQ3_S, 110, 0, 0xFF, 0xFF, 2, 0}};
  for (const Extreme& c : cases) {
    Mat m = make(c.type, 2, 512);
    ASSERT_EQ(row_bytes(c.type, 512), 2 * c.bytes);
    for (int sb = 0; sb < 4; ++sb) {
      uint8_t* blk = m.data.data() + sb * c.bytes;
      std::fill(blk, blk + c.bytes, c.fill);
      std::fill(blk + c.scale_at, blk + c.scale_at + c.scale_bytes, c.scale_fill);
      blk[c.d_at] = 0x00, blk[c.d_at + 1] = 0x3C;  // d = 1
      if (c.type == WeightType::Q2_K) blk[82] = blk[83] = 0;  // dmin = 0
    }
    for (float sign : {1.0f, -1.0f}) {
      const std::vector<float> x(512, sign);
      ActQ8 a;
      quantize_act_q8(x.data(), 512, a);
      const float twin = qdot_row_scalar(m.view, 0, a);
      std::vector<float> ref(1);
      linear_rows_ref(m.view, 0, 1, x.data(), 1, 512, ref.data(), 1);
      EXPECT_NEAR(twin, ref[0], std::fabs(ref[0]) * 1e-5f) << weight_type_name(c.type) << ": the twin is exact here";
      test::for_each_vector_level([&](CpuLevel level) {
        EXPECT_NEAR(qdot_row(m.view, 0, a), twin, std::fabs(twin) * 1e-6f)
            << cpu_level_name(level) << " " << weight_type_name(c.type) << " sign " << sign;
        if (qdot_tiles_supported(c.type)) {  // the tiles' exact int32 sums, biased to unsigned
          float tiled[2];
          qdot_rows_tiled(m.view, 0, 2, &a, 1, tiled, 2);
          EXPECT_NEAR(tiled[0], twin, std::fabs(twin) * 1e-6f)
              << cpu_level_name(level) << " " << weight_type_name(c.type) << " tiles, sign " << sign;
        }
      });
    }
  }
}

// The documented error: NMSE against the exact product, per type (printed). Gaussian
// activations give ~2e-5; the test's activations carry an outlier 30σ in one block, which
// coarsens that block's scale (~1e-4 overall).
TEST(QDot, ErrorAgainstTheExactProductIsTheActivationRounding) {
  for (const Case& c : kCases) {
    const Mat m = make(c.type, c.rows, c.cols);
    const std::vector<float> x = activations(c.cols, 5);
    ActQ8 a;
    quantize_act_q8(x.data(), c.cols, a);
    std::vector<float> got, exact(static_cast<size_t>(c.rows));
    for (int64_t r = 0; r < c.rows; ++r) got.push_back(qdot_row_scalar(m.view, r, a));
    linear_rows_ref(m.view, 0, c.rows, x.data(), 1, c.cols, exact.data(), c.rows);
    const double e = test::nmse(exact, got);
    std::printf("  %-6s %4lldx%-5lld NMSE %.2e\n", std::string(weight_type_name(c.type)).c_str(),
                static_cast<long long>(c.rows), static_cast<long long>(c.cols), e);
    EXPECT_LT(e, 5e-4) << weight_type_name(c.type);
    EXPECT_GT(e, 0) << "the activations were not quantized";
  }
}

TEST(QDot, Mxfp4SpecialScalesFollowTheDequantizer) {
  Mat m = make(WeightType::MXFP4, 2, 64);
  m.scale[0] = 0xFF;  // NaN scale: row 0 is NaN
  m.scale[2] = 0;     // 2^-127: row 1 still finite
  ActQ8 a;
  quantize_act_q8(randn(64, 9).data(), 64, a);
  for (CpuLevel level : {CpuLevel::Scalar, CpuLevel::Avx2, CpuLevel::Avx512}) {
    const CpuLevel saved = dispatch_level();
    if (set_dispatch_level(level) != level) continue;
    EXPECT_TRUE(std::isnan(qdot_row(m.view, 0, a))) << cpu_level_name(level);
    EXPECT_TRUE(std::isfinite(qdot_row(m.view, 1, a))) << cpu_level_name(level);
    set_dispatch_level(saved);
  }
  // The tiles (rows of 256 here) read the scales the same way.
  Mat t = make(WeightType::MXFP4, 2, 256);
  t.scale[0] = 0xFF;
  t.scale[8] = 0;
  ActQ8 b;
  quantize_act_q8(randn(256, 9).data(), 256, b);
  test::for_each_vector_level([&](CpuLevel level) {
    if (!qdot_tiles_supported(WeightType::MXFP4)) return;
    float y[2];
    qdot_rows_tiled(t.view, 0, 2, &b, 1, y, 2);
    EXPECT_TRUE(std::isnan(y[0])) << cpu_level_name(level) << " tiles";
    EXPECT_TRUE(std::isfinite(y[1])) << cpu_level_name(level) << " tiles";
    EXPECT_EQ(std::isnan(y[0]), std::isnan(qdot_row_scalar(t.view, 0, b)));
  });
}

TEST(QDot, LinearUsesItForSmallBatchesOnly) {
  const Mat m = make(WeightType::Q4_K, 80, 1024);  // big enough for the GEMM path
  const int64_t n = 3;
  const std::vector<float> x = randn(n * 1024, 21);
  std::vector<float> y(static_cast<size_t>(n * 80)), exact(y.size());
  {
    const ScopedIntDot on(true);
    linear(m.view, x.data(), n, y.data());
  }
  {
    const ScopedIntDot off(false);
    linear(m.view, x.data(), n, exact.data());
  }
  for (int64_t t = 0; t < n; ++t) {
    ActQ8 a;
    quantize_act_q8(x.data() + t * 1024, 1024, a);
    for (int64_t r = 0; r < 80; ++r) EXPECT_EQ(y[static_cast<size_t>(t * 80 + r)], qdot_row(m.view, r, a));
  }
  EXPECT_NE(y, exact);
  EXPECT_LT(test::nmse(exact, y), 1e-4);
  // Batches of int_dot_gemm_min_batch() and more take the f32 GEMM either way (where Q4_K's
  // tiles never give way to it, from a threshold set here).
  const ScopedIntDotGemmMinBatch at(int_dot_gemm_min_batch(WeightType::Q4_K) == INT64_MAX ? 64 : 0);
  const int64_t big = int_dot_gemm_min_batch(WeightType::Q4_K);
  const std::vector<float> xb = randn(big * 1024, 22);
  std::vector<float> a(static_cast<size_t>(big * 80)), b(a.size());
  {
    const ScopedIntDot on(true);
    linear(m.view, xb.data(), big, a.data());
  }
  {
    const ScopedIntDot off(false);
    linear(m.view, xb.data(), big, b.data());
  }
  EXPECT_EQ(a, b);
}

// Gate and up in one job: the same numbers as two separate products, on every path.
TEST(QDot, LinearPairEqualsTwoProducts) {
  const Mat a = make(WeightType::Q4_K, 37, 512, 1), b = make(WeightType::Q6_K, 29, 512, 2);
  const Mat c = make(WeightType::Q8_0, 33, 512, 3);
  for (bool on : {true, false})
    for (int64_t n : {int64_t{1}, int64_t{3}}) {
      const ScopedIntDot mode(on);
      const std::vector<float> x = randn(n * 512, 8);
      for (const auto& [p, q] : {std::pair{&a, &b}, std::pair{&c, &a}}) {
        std::vector<float> ya(static_cast<size_t>(n * p->view.rows)), yb(static_cast<size_t>(n * q->view.rows));
        std::vector<float> ra(ya.size()), rb(yb.size());
        linear_pair(p->view, q->view, x.data(), n, ya.data(), yb.data());
        linear(p->view, x.data(), n, ra.data());
        linear(q->view, x.data(), n, rb.data());
        EXPECT_EQ(ya, ra) << "int dot " << on << " n=" << n;
        EXPECT_EQ(yb, rb) << "int dot " << on << " n=" << n;
      }
    }
  const Mat d = make(WeightType::Q8_0, 4, 256);
  std::vector<float> x(512), y(64);
  EXPECT_THROW(linear_pair(a.view, d.view, x.data(), 1, y.data(), y.data()), std::invalid_argument);
}

// Integer-dot weights reach the GEMM at their own threshold, other weights at gemm_min_batch();
// the default follows the CPU (qdot.h).
TEST(QDot, IntegerDotTypesReachTheGemmAtTheirOwnThreshold) {
  const Mat q = make(WeightType::Q4_K, 80, 1024), b = make(WeightType::BF16, 80, 1024);
  {
    const ScopedIntDotGemmMinBatch at(64);
    EXPECT_EQ(int_dot_gemm_min_batch(), std::max<int64_t>(64, gemm_min_batch()));
    EXPECT_EQ(linear_path(q.view, 80, 63), qdot_tiles_supported(WeightType::Q4_K) ? LinearPath::IntDotTiles : LinearPath::IntDot);
    EXPECT_EQ(linear_path(q.view, 80, 3), LinearPath::IntDot);
    EXPECT_EQ(linear_path(q.view, 80, 64), LinearPath::Gemm);
    EXPECT_EQ(int_dot_gemm_min_batch(WeightType::Q4_K), int_dot_gemm_min_batch());
    EXPECT_EQ(linear_path(b.view, 80, gemm_min_batch()), LinearPath::Gemm);
    const ScopedIntDot off(false);  // without the integer dot, the plain threshold
    EXPECT_EQ(linear_path(q.view, 80, gemm_min_batch()), LinearPath::Gemm);
  }
  const bool vnni = dispatch_level() == CpuLevel::Avx512 && cpu_features().avx512vnni && !cpu_features().emulated;
  const int64_t want = vnni && !cpu_features().amx_bf16 ? std::max<int64_t>(256, gemm_min_batch()) : gemm_min_batch();
  if (!std::getenv("STRATA_INT_DOT_GEMM_MIN_BATCH")) {
    EXPECT_EQ(int_dot_gemm_min_batch(), want);
    // Where a type has tiles on such a CPU, or at the AVX2 level (whose GEMM is F32), it never
    // takes the GEMM; with the tiles off it keeps the threshold.
    const bool tiles_win = (vnni || dispatch_level() == CpuLevel::Avx2) && !cpu_features().amx_bf16;
    for (WeightType t : {WeightType::Q4_K, WeightType::Q6_K, WeightType::Q4_0, WeightType::IQ1_S})
      EXPECT_EQ(int_dot_gemm_min_batch(t), tiles_win && qdot_tiles_supported(t) ? INT64_MAX : want)
          << weight_type_name(t);
    KernelChoices no_tiles = kernel_choices();
    no_tiles.int_dot_tiles = false;
    const ScopedKernelChoices off(no_tiles);
    EXPECT_EQ(int_dot_gemm_min_batch(WeightType::Q4_0), want);
  }
  std::printf("  integer-dot weights take the GEMM from %lld tokens (VNNI %s, AMX %s)\n",
              static_cast<long long>(int_dot_gemm_min_batch()), vnni ? "yes" : "no",
              cpu_features().amx_bf16 ? "yes" : "no");
}

// Activations quantized without the reordered copy a weight type's kernels read are refused
// (linear() asks for exactly the copies its products need: act_orders_for()).
TEST(QDot, ActivationsWithoutTheirTypesOrderAreRefused) {
  for (WeightType t :
       {WeightType::Q4_K, WeightType::Q5_K, WeightType::IQ4_XS, WeightType::MXFP4, WeightType::IQ2_XXS}) {
    const Mat m = make(t, 2, 256);
    ActQ8 bare, fit;
    const std::vector<float> x = randn(256, 4);
    quantize_act_q8(x.data(), 256, bare, kActAllOrders & ~act_orders_for(t));
    quantize_act_q8(x.data(), 256, fit, act_orders_for(t));
    EXPECT_NE(act_orders_for(t), 0u) << weight_type_name(t);
    EXPECT_THROW(qdot_row(m.view, 0, bare), std::invalid_argument) << weight_type_name(t);
    const float twin = qdot_row_scalar(m.view, 0, fit);
    EXPECT_NEAR(qdot_row(m.view, 0, fit), twin, std::fabs(twin) * 1e-5f) << weight_type_name(t);
  }
  EXPECT_EQ(act_orders_for(WeightType::Q8_0), 0u);
}

TEST(QDot, UnsupportedTypesAreRefused) {
  const Mat m = make(WeightType::Q8_0, 2, 64);
  ActQ8 a;
  quantize_act_q8(randn(64, 1).data(), 64, a);
  WeightView bf = m.view;
  bf.type = WeightType::BF16;
  EXPECT_FALSE(qdot_supported(WeightType::BF16));
  EXPECT_THROW(qdot_row(bf, 0, a), std::invalid_argument);
  ActQ8 short_a;
  quantize_act_q8(randn(32, 1).data(), 32, short_a);
  EXPECT_THROW(qdot_row(m.view, 0, short_a), std::invalid_argument);
}

}  // namespace
}  // namespace strata
