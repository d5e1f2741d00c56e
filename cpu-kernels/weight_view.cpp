#include "cpu-kernels/weight_view.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "cpu-kernels/dequant.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/tile_layout.h"

namespace strata {

int64_t row_bytes(WeightType t, int64_t cols) {
  const auto& info = weight_type_info(t);
  if (t == WeightType::MXFP4) return cols / 2;
  if (cols % info.block_elems != 0)
    throw std::invalid_argument(std::string(weight_type_name(t)) + ": row of " + std::to_string(cols) +
                                " is not a whole number of blocks");
  return cols / info.block_elems * info.block_bytes;
}

int64_t weight_data_bytes(const WeightView& w) { return w.rows * row_bytes(w.type, w.cols); }

int64_t weight_scale_bytes(const WeightView& w) {
  if (!w.scale) return 0;
  const int64_t elem = w.scale_type == WeightType::F32 ? 4 : 1;
  if (w.type == WeightType::MXFP4) return w.rows * (w.cols / 32) * elem;
  return ((w.rows + 127) / 128) * ((w.cols + 127) / 128) * elem;  // FP8 128x128 blocks
}

void check_weight_view(const WeightView& w) {
  if (!w.data || w.rows <= 0 || w.cols <= 0) throw std::invalid_argument("empty weight view");
  if (w.type == WeightType::MXFP4) {
    if (w.cols % 32 != 0) throw std::invalid_argument("MXFP4 weight: cols not a multiple of 32");
    if (!w.scale || w.scale_type != WeightType::F8_E8M0)
      throw std::invalid_argument("MXFP4 weight needs E8M0 scales");
    return;
  }
  if (w.type == WeightType::F8_E4M3 && w.scale && w.scale_type != WeightType::F32 &&
      w.scale_type != WeightType::F8_E8M0)
    throw std::invalid_argument("FP8 block scales must be F32 or F8_E8M0");
  if (is_tiled_layout(w.type) && (w.rows % kTileLayoutRows || w.cols % 256))
    throw std::invalid_argument(std::string(weight_type_name(w.type)) + " weight of " + std::to_string(w.rows) +
                                " rows and " + std::to_string(w.cols) +
                                " columns: tiled layouts need rows in 16s and columns in 256s");
  (void)row_bytes(w.type, w.cols);
}

namespace {

float scale_at(const WeightView& w, int64_t i) {
  if (w.scale_type == WeightType::F32) {
    float s;
    std::memcpy(&s, w.scale + 4 * i, 4);
    return s;
  }
  return e8m0_to_f32(w.scale[i]);
}

}  // namespace

void dequantize_rows(const WeightView& w, int64_t r0, int64_t n, float* out) {
  const int64_t cols = w.cols;
  if (w.type == WeightType::F8_E4M3 && w.scale) {
    const int64_t scale_cols = (cols + 127) / 128;
    for (int64_t r = r0; r < r0 + n; ++r) {
      const uint8_t* row = w.data + r * cols;
      float* o = out + (r - r0) * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] = e4m3_to_f32(row[c]) * scale_at(w, (r / 128) * scale_cols + c / 128);
    }
    return;
  }
  if (w.type == WeightType::MXFP4) {
    for (int64_t r = r0; r < r0 + n; ++r)
      dequantize_mxfp4_ref(w.data + r * (cols / 2), w.scale + r * (cols / 32), 1, cols, out + (r - r0) * cols);
    return;
  }
  const int64_t rb = row_bytes(w.type, cols);
  if (is_tiled_layout(w.type)) {
    std::vector<uint8_t> buf(static_cast<size_t>(rb));
    for (int64_t r = r0; r < r0 + n; ++r) {
      const WeightView row = row_view(w, r, buf.data());
      dequantize_row_ref(row.type, row.data, out + (r - r0) * cols, cols);
    }
    return;
  }
  for (int64_t r = r0; r < r0 + n; ++r) dequantize_row_ref(w.type, w.data + r * rb, out + (r - r0) * cols, cols);
}

}  // namespace strata
