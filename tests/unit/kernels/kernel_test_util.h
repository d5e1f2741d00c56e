// Random activations and random weight matrices in any stored type, for the kernel tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cpu-kernels/cpu_features.h"
#include "cpu-kernels/dequant.h"
#include "cpu-kernels/kernel_choices.h"
#include "cpu-kernels/quantize.h"
#include "cpu-kernels/weight_view.h"

namespace strata::test {

// Whether the AVX-512 level's integer dots have a second table on this CPU: VNNI's kernels
// with the lattice decoders on VBMI (qdot_vbmi.cpp), the first run where the CPU has both.
inline bool avx512_has_vbmi_table() { return cpu_features().avx512vnni && cpu_features().avx512vbmi; }

// Runs f(level) at each vector dispatch level this CPU has (printing those it lacks), then
// restores the level in effect; returns how many ran (0: the caller should skip). Where the
// CPU has VBMI, AVX-512 runs twice: with its VBMI decoders, then without (as on CPUs with VNNI
// alone), which a failure there names.
template <class F>
int for_each_vector_level(F&& f) {
  const CpuLevel saved = dispatch_level();
  int ran = 0;
  for (CpuLevel level : {CpuLevel::Avx2, CpuLevel::Avx512}) {
    if (set_dispatch_level(level) != level) {
      std::printf("  (%s not available on this CPU: skipped)\n", std::string(cpu_level_name(level)).c_str());
      continue;
    }
    ++ran;
    f(level);
    if (level == CpuLevel::Avx512 && avx512_has_vbmi_table()) {
      KernelChoices c = kernel_choices();
      c.avx512_vbmi = false;
      const ScopedKernelChoices scoped(c);
      SCOPED_TRACE("avx512 without VBMI");
      f(level);
    }
  }
  set_dispatch_level(saved);
  return ran;
}

// Runs f(level) at the scalar level, then at each vector level this CPU has (as above), and
// restores the level in effect.
template <class F>
void for_each_level(F&& f) {
  const CpuLevel saved = dispatch_level();
  set_dispatch_level(CpuLevel::Scalar);
  f(CpuLevel::Scalar);
  set_dispatch_level(saved);
  for_each_vector_level(f);
}

// n elements of type t dequantized by the scalar reference.
inline std::vector<float> deq(WeightType t, const void* src, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row_ref(t, src, y.data(), n);
  return y;
}

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
