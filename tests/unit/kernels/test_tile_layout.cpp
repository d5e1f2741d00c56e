// The tiled layouts (tile_layout.h): the repacking moves bytes only, every reader of a tiled
// matrix gives what it gives for the stored rows, and what cannot be tiled is refused by name.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/tile_layout.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

using test::Mat;
using test::randn;

// m repacked into its tiled layout (owning its bytes).
struct Tiled {
  std::vector<uint8_t> data;
  WeightView view;
};
Tiled tile(const Mat& m) {
  Tiled t;
  t.data.resize(static_cast<size_t>(tiled_data_bytes(m.view)));
  t.view = repack_to_tiles(m.view, t.data.data());
  return t;
}

std::vector<ActQ8> quantized(const std::vector<float>& x, int64_t n, int64_t cols) {
  std::vector<ActQ8> a(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) quantize_act_q8(x.data() + t * cols, cols, a[static_cast<size_t>(t)]);
  return a;
}

TEST(TileLayout, RepackingMovesBytesOnly) {
  for (WeightType type : {WeightType::Q4_K, WeightType::Q5_K, WeightType::Q6_K, WeightType::Q2_K, WeightType::Q3_K}) {
    const Mat m = test::make_matrix(type, 48, 768);
    const Tiled t = tile(m);
    EXPECT_EQ(t.view.type, *tiled_layout_of(type));
    EXPECT_EQ(row_layout_of(t.view.type), type);
    EXPECT_NE(t.data, m.data) << "the layout must differ from the rows'";
    std::vector<uint8_t> back(m.data.size());
    tiled_rows_to_rows(t.view, 0, 48, back.data());
    EXPECT_EQ(back, m.data);
    // Byte 4k + i of row j's super-block s, where the header says it lies (the tiled type's rows
    // and blocks: Q6_K's and Q3_K's padded to 212 and 112 bytes, the two extra zero; Q3_K's
    // hmask bytes with their bits where block_layouts.h's kQ3KTiledHighBit says).
    const auto stored_as_tiled = [&](int64_t b, uint8_t v) {
      if (type != WeightType::Q3_K || b >= 32) return v;
      int out = 0;
      for (int bit = 0; bit < 8; ++bit) out |= ((v >> bit) & 1) << kQ3KTiledHighBit[bit];
      return static_cast<uint8_t>(out);
    };
    const int64_t rb = row_bytes(type, 768), bb = weight_type_info(type).block_bytes;
    const int64_t rt = row_bytes(t.view.type, 768), bt = weight_type_info(t.view.type).block_bytes;
    EXPECT_EQ(bt % 4, 0);
    EXPECT_EQ(static_cast<int64_t>(t.data.size()), 48 * rt);
    for (int64_t r : {0, 21, 47})
      for (int64_t s = 0; s < 3; ++s)
        for (int64_t b = 0; b < bt; ++b)
          EXPECT_EQ(t.data[static_cast<size_t>(r / 16 * 16 * rt + s * 16 * bt + 64 * (b / 4) + 4 * (r % 16) +
                                               b % 4)],
                    b < bb ? stored_as_tiled(b, m.data[static_cast<size_t>(r * rb + s * bb + b)]) : 0)
              << weight_type_name(type) << " row " << r << " block " << s << " byte " << b;
    // The scalar ground truth and the row dequantizer read the tiled rows as the stored ones.
    std::vector<float> a(static_cast<size_t>(48 * 768)), b(a.size());
    dequantize_rows(m.view, 0, 48, a.data());
    dequantize_rows(t.view, 0, 48, b.data());
    EXPECT_EQ(a, b);
    std::vector<float> row(768);
    dequant_row(t.view, 37, row.data());
    EXPECT_EQ(0, std::memcmp(row.data(), a.data() + 37 * 768, 768 * sizeof(float)));
  }
}

TEST(TileLayout, WhatCannotBeTiledIsRefused) {
  EXPECT_FALSE(tiled_layout_of(WeightType::Q8_0));
  EXPECT_FALSE(tiled_layout_of(WeightType::IQ2_XXS));
  EXPECT_FALSE(tiled_layout_of(WeightType::BF16));
  EXPECT_FALSE(weight_type_from_name("q4_k_t16")) << "a layout is no storage type";
  const Mat odd = test::make_matrix(WeightType::Q4_K, 40, 256);  // 40 rows: not whole tiles
  EXPECT_FALSE(can_tile(odd.view));
  std::vector<uint8_t> out(odd.data.size());
  try {
    repack_to_tiles(odd.view, out.data());
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[40, 256]"), std::string::npos) << e.what();
  }
  const Mat q8 = test::make_matrix(WeightType::Q8_0, 16, 256);
  EXPECT_THROW(tiled_data_bytes(q8.view), std::invalid_argument);
  EXPECT_THROW(tiled_rows_to_rows(odd.view, 0, 1, out.data()), std::invalid_argument) << "stored rows are no tiles";
  const Tiled whole = tile(test::make_matrix(WeightType::Q4_K, 32, 256));
  WeightView v = whole.view;
  EXPECT_NO_THROW(check_weight_view(v));
  v.rows = 24;
  EXPECT_THROW(check_weight_view(v), std::invalid_argument);
}

// The tiles over the tiled layout are the tiles over the rows, bit for bit, at every level that
// has them and for every batch (1 token to more than a pass of 64); where the tiles are off or
// the level has none, the rows are gathered and the row kernels give their own results.
TEST(TileLayout, ProductsEqualTheStoredRows) {
  for (WeightType type : {WeightType::Q4_K, WeightType::Q5_K, WeightType::Q6_K, WeightType::Q2_K, WeightType::Q3_K}) {
    const Mat m = test::make_matrix(type, 64, 512, WeightType::F32, 3);
    const Tiled t = tile(m);
    for (int64_t n : {1, 3, 8, 17, 70}) {
      const std::vector<ActQ8> a = quantized(randn(n * 512, 11 + static_cast<uint32_t>(n)), n, 512);
      std::vector<float> want(static_cast<size_t>(n * 64)), got(want.size());
      const int levels = test::for_each_vector_level([&](CpuLevel level) {
        for (bool vnni : {true, false}) {  // AVX2's tiles with and without AVX-VNNI
          KernelChoices c = kernel_choices();
          c.avx_vnni = vnni;
          const ScopedKernelChoices scoped(c);
          if (!qdot_tiles_supported(type)) continue;
          ASSERT_TRUE(qdot_tiles_supported(t.view.type)) << cpu_level_name(level);
          // A call over the second pair of tiles alone, and one over all four.
          qdot_rows_tiled(m.view, 32, 32, a.data(), n, want.data(), 32);
          qdot_rows_tiled(t.view, 32, 32, a.data(), n, got.data(), 32);
          EXPECT_EQ(std::vector<float>(want.begin(), want.begin() + n * 32), std::vector<float>(got.begin(), got.begin() + n * 32))
              << weight_type_name(type) << " n=" << n << " " << cpu_level_name(level) << " vnni " << vnni;
          qdot_rows_tiled(m.view, 0, 64, a.data(), n, want.data(), 64);
          qdot_rows_tiled(t.view, 0, 64, a.data(), n, got.data(), 64);
          EXPECT_EQ(want, got) << weight_type_name(type) << " n=" << n << " " << cpu_level_name(level);
        }
      });
      if (levels == 0) std::printf("  (no vector level: the tiles over the layout are not run)\n");
      // The gathered rows: the row kernels' results for the stored rows, at every level.
      test::for_each_level([&](CpuLevel level) {
        KernelChoices c = kernel_choices();
        c.int_dot_tiles = false;
        const ScopedKernelChoices scoped(c);
        qdot_rows_tokens(m.view, 0, 64, a.data(), n, want.data(), 64);
        qdot_rows_tokens(t.view, 0, 64, a.data(), n, got.data(), 64);
        EXPECT_EQ(want, got) << weight_type_name(type) << " n=" << n << " gathered, " << cpu_level_name(level);
      });
      // Where the level in effect has tiles for the layout (not at STRATA_CPU_LEVEL=scalar, which
      // gathers the rows as above), rows that split a tile are refused.
      if (qdot_tiles_supported(t.view.type)) {
        EXPECT_THROW(qdot_rows_tiled(t.view, 8, 16, a.data(), n, got.data(), 16), std::invalid_argument)
            << "rows that split a tile";
      }
    }
  }
}

// The layout pays where the 16-row tiles of AVX-512 VNNI run, and nowhere else (AVX2's 8-row
// tiles over it lose to the row kernels for one token), nor with the integer dot or its tiles
// off for the run (every product would gather the rows back): what --repack consults.
TEST(TileLayout, PaysWhereThe16RowTilesRun) {
  const CpuLevel saved = dispatch_level();
  for (CpuLevel level : {CpuLevel::Scalar, CpuLevel::Avx2, CpuLevel::Avx512}) {
    if (set_dispatch_level(level) != level) continue;
    const bool tiles16 = level == CpuLevel::Avx512 && cpu_features().avx512vnni;
    EXPECT_EQ(tiled_layout_pays(), tiles16) << cpu_level_name(level);
    EXPECT_EQ(tiled_layout_declined().empty(), tiles16) << tiled_layout_declined();
    {
      const ScopedIntDot exact(false);
      EXPECT_FALSE(tiled_layout_pays()) << cpu_level_name(level);
      EXPECT_NE(tiled_layout_declined().find("--exact-dot"), std::string::npos) << tiled_layout_declined();
    }
    KernelChoices c = kernel_choices();
    c.batch_invariant = true;
    {
      const ScopedKernelChoices invariant(c);
      EXPECT_FALSE(tiled_layout_pays()) << cpu_level_name(level);
    }
    c.batch_invariant = false;
    c.int_dot_tiles = false;
    {
      const ScopedKernelChoices no_tiles(c);
      EXPECT_FALSE(tiled_layout_pays()) << cpu_level_name(level);
    }
  }
  set_dispatch_level(saved);
}

// linear() takes a tiled matrix from one token on, and its result is the stored rows' product
// up to the tiles' f32 rounding; with the integer dot off (--exact-dot), the exact product.
TEST(TileLayout, LinearOnATiledMatrix) {
  const Mat m = test::make_matrix(WeightType::Q4_K, 96, 1024, WeightType::F32, 5);
  const Tiled t = tile(m);
  for (int64_t n : {1, 2, 8, 40}) {
    const std::vector<float> x = randn(n * 1024, 30 + static_cast<uint32_t>(n));
    std::vector<float> want(static_cast<size_t>(n * 96)), got(want.size());
    linear(m.view, x.data(), n, want.data());
    linear(t.view, x.data(), n, got.data());
    EXPECT_LT(test::nmse(want, got), 1e-10) << "n=" << n;
    if (qdot_tiles_supported(t.view.type) && n < int_dot_gemm_min_batch(t.view.type)) {
      EXPECT_EQ(linear_path(t.view, 96, n), LinearPath::IntDotTiles) << "n=" << n;
    }
    const ScopedIntDot exact(false);
    linear(m.view, x.data(), n, want.data());
    linear(t.view, x.data(), n, got.data());
    EXPECT_EQ(want, got) << "exact, n=" << n;
  }
}

}  // namespace
}  // namespace strata
