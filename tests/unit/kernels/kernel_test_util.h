// Random activations and random weight matrices in any stored type, for the kernel tests.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "cpu-kernels/quantize.h"
#include "cpu-kernels/weight_view.h"

namespace strata::test {

inline std::vector<float> randn(int64_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(g);
  return v;
}

// A [rows, cols] matrix of N(0, 1) values stored as t (FP8 with block scales of scale_type,
// MXFP4 with its E8M0 scales), owning its bytes.
struct Mat {
  std::vector<uint8_t> data, scale;
  WeightView view;
};

inline Mat make_matrix(WeightType t, int64_t rows, int64_t cols, WeightType scale_type = WeightType::F32,
                       uint32_t seed = 7) {
  Mat m;
  const std::vector<float> src = randn(rows * cols, seed);
  if (t == WeightType::F8_E4M3) {
    quantize_fp8_blockscaled_ref(src.data(), rows, cols, scale_type, m.data, m.scale);
  } else if (t == WeightType::MXFP4) {
    quantize_mxfp4_ref(src.data(), rows, cols, m.data, m.scale);
    scale_type = WeightType::F8_E8M0;
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      auto row = quantize_row_ref(t, src.data() + r * cols, cols);
      m.data.insert(m.data.end(), row.begin(), row.end());
    }
  }
  m.view = {t, m.data.data(), rows, cols, m.scale.empty() ? nullptr : m.scale.data(), scale_type};
  return m;
}

}  // namespace strata::test
