// A weight matrix as it lies in memory (a mapped file region), in its stored type: the form
// every matrix op takes. Rows are the output features ([out, in], as in the checkpoints).
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_type.h"

namespace strata {

struct WeightView {
  WeightType type = WeightType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  // Block scales: F8_E4M3 weights carry [ceil(rows/128), ceil(cols/128)] scales of type F32 or
  // F8_E8M0 (none: plain E4M3); MXFP4 weights carry E8M0 scales [rows, cols/32].
  const uint8_t* scale = nullptr;
  WeightType scale_type = WeightType::F32;
};

// Bytes of one row of `cols` elements of a row-quantized type (throws std::invalid_argument
// when cols is not a whole number of blocks).
int64_t row_bytes(WeightType t, int64_t cols);

// Bytes the view's data and its block scales span (what a copy of the matrix must move).
int64_t weight_data_bytes(const WeightView& w);
int64_t weight_scale_bytes(const WeightView& w);

// Checks the view describes a complete matrix of its type (block multiples, scales present
// where the type needs them); throws std::invalid_argument naming what is wrong.
void check_weight_view(const WeightView& w);

// Rows [r0, r0+n) of w as f32, [n, cols] row-major: the scalar ground truth.
void dequantize_rows(const WeightView& w, int64_t r0, int64_t n, float* out);

}  // namespace strata
