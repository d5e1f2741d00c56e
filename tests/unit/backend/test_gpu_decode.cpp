// The CUDA products' decoders (gpu-kernels/decode_group.h) run here on the host, group by group,
// against the scalar dequantizer of cpu-kernels/ for every type they accept: the formats are
// checked on every machine, with or without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../kernels/kernel_test_util.h"
#include "gpu-kernels/decode_group.h"

namespace strata {
namespace {

// Every group of every row of m decoded by decode32_any; false (with the first difference
// printed) when an element differs from dequantize_rows by more than an ulp or so.
void expect_groups_match(const WeightView& w, const std::string& label) {
  std::vector<float> ref(static_cast<size_t>(w.rows * w.cols));
  dequantize_rows(w, 0, w.rows, ref.data());
  const gpu::Mat m = gpu::mat_of(w, &iq_grids());
  const int64_t groups = (w.cols + 31) / 32;
  int64_t bad = 0;
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      float y[32];
      ASSERT_TRUE(gpu::decode32_any(m, r, g, y)) << label;
      for (int j = 0; j < 32; ++j) {
        const int64_t c = 32 * g + j;
        if (c >= w.cols) {
          EXPECT_EQ(y[j], 0.0f) << label << ": element past the row end";
          continue;
        }
        const float want = ref[static_cast<size_t>(r * w.cols + c)];
        const bool same = (std::isnan(want) && std::isnan(y[j])) ||
                          std::fabs(want - y[j]) <= 2e-7f * std::max(std::fabs(want), std::fabs(y[j])) + 1e-30f;
        if (!same && bad++ < 3)
          ADD_FAILURE() << label << ": row " << r << " col " << c << ": decode32 " << y[j] << ", dequantize_rows "
                        << want;
      }
    }
  EXPECT_EQ(bad, 0) << label;
}

TEST(GpuDecode, EveryDecodableTypeMatchesTheScalarDequantizer) {
  int tried = 0;
  for (int i = 0; i <= static_cast<int>(WeightType::IQ1_M); ++i) {
    const auto t = static_cast<WeightType>(i);
    if (!gpu::decodable(t)) continue;
    const int64_t rows = 3, cols = (t == WeightType::F32 || t == WeightType::F16 || t == WeightType::BF16) ? 300 : 512;
    if (t == WeightType::F8_E4M3) {
      for (WeightType st : {WeightType::F32, WeightType::F8_E8M0}) {
        const test::Mat a = test::make_matrix(t, 130, 384, st, 11);  // two row blocks of scales
        expect_groups_match(a.view, "f8_e4m3 with " + std::string(weight_type_name(st)) + " scales");
      }
      test::Mat plain = test::make_matrix(t, rows, cols, WeightType::F32, 12);
      plain.view.scale = nullptr;
      expect_groups_match(plain.view, "f8_e4m3 without scales");
    } else {
      const test::Mat a = test::make_matrix(t, rows, cols, WeightType::F32, 13 + i);
      expect_groups_match(a.view, std::string(weight_type_name(t)));
    }
    ++tried;
  }
  EXPECT_EQ(tried, 24);
}

// Random bytes, not only what the quantizers write: every bit pattern of the scales and
// quants (subnormal, infinite and NaN f16 scales too) decodes as the scalar reference does.
TEST(GpuDecode, RandomBlockBytesDecodeAsTheScalarDequantizerDoes) {
  std::mt19937 gen(5);
  for (WeightType t : gguf_block_types()) {
    if (!gpu::decodable(t)) continue;
    const int64_t rows = 4, cols = 512;
    std::vector<uint8_t> bytes(static_cast<size_t>(rows * row_bytes(t, cols)));
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(gen());
    WeightView w;
    w.type = t;
    w.data = bytes.data();
    w.rows = rows;
    w.cols = cols;
    expect_groups_match(w, std::string(weight_type_name(t)) + " (random bytes)");
  }
}

TEST(GpuDecode, WhatCannotBeDecodedIsRefused) {
  float y[32];
  gpu::Mat m;
  m.type = WeightType::I32;
  EXPECT_FALSE(gpu::decodable(m.type));
  EXPECT_FALSE(gpu::decode32_any(m, 0, 0, y));
  // A lattice type is decodable, but not without its codebooks.
  for (WeightType t : {WeightType::IQ2_XXS, WeightType::IQ3_S, WeightType::IQ1_M}) {
    m.type = t;
    EXPECT_TRUE(gpu::decodable(t)) << weight_type_name(t);
    EXPECT_FALSE(gpu::decode32_any(m, 0, 0, y)) << weight_type_name(t);
  }
}

}  // namespace
}  // namespace strata
