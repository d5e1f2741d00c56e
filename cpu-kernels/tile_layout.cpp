#include "cpu-kernels/tile_layout.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace strata {

bool is_tiled_layout(WeightType t) { return t == WeightType::Q4_K_T16 || t == WeightType::Q5_K_T16; }

WeightType row_layout_of(WeightType t) {
  switch (t) {
    case WeightType::Q4_K_T16: return WeightType::Q4_K;
    case WeightType::Q5_K_T16: return WeightType::Q5_K;
    default: return t;
  }
}

std::optional<WeightType> tiled_layout_of(WeightType t) {
  switch (t) {
    case WeightType::Q4_K: return WeightType::Q4_K_T16;
    case WeightType::Q5_K: return WeightType::Q5_K_T16;
    default: return std::nullopt;
  }
}

bool can_tile(const WeightView& w) {
  return tiled_layout_of(w.type) && w.rows > 0 && w.rows % kTileLayoutRows == 0 && w.cols > 0 && w.cols % 256 == 0;
}

namespace {

// Where byte 4k + i of row j's super-block s of the tile lands, as an offset in the tile.
struct TileGeometry {
  int64_t row_bytes, block_bytes, blocks;
  explicit TileGeometry(const WeightView& w)
      : row_bytes(row_bytes_of(w)), block_bytes(weight_type_info(w.type).block_bytes), blocks(w.cols / 256) {}
  static int64_t row_bytes_of(const WeightView& w) { return strata::row_bytes(w.type, w.cols); }
  int64_t tile_bytes() const { return kTileLayoutRows * row_bytes; }
};

}  // namespace

WeightView repack_to_tiles(const WeightView& w, uint8_t* out) {
  if (!can_tile(w))
    throw std::invalid_argument("repack_to_tiles: " + std::string(weight_type_name(w.type)) + " [" +
                                std::to_string(w.rows) + ", " + std::to_string(w.cols) +
                                "] has no tiled layout (Q4_K or Q5_K, rows a multiple of 16, columns of 256)");
  const TileGeometry g(w);
  const int64_t dwords = g.block_bytes / 4;
  for (int64_t t = 0; t < w.rows / kTileLayoutRows; ++t) {
    uint8_t* tile = out + t * g.tile_bytes();
    for (int64_t j = 0; j < kTileLayoutRows; ++j) {
      const uint8_t* row = w.data + (t * kTileLayoutRows + j) * g.row_bytes;
      for (int64_t s = 0; s < g.blocks; ++s)
        for (int64_t k = 0; k < dwords; ++k)
          std::memcpy(tile + s * kTileLayoutRows * g.block_bytes + 64 * k + 4 * j, row + s * g.block_bytes + 4 * k, 4);
    }
  }
  WeightView v = w;
  v.type = *tiled_layout_of(w.type);
  v.data = out;
  return v;
}

void tiled_rows_to_rows(const WeightView& w, int64_t r0, int64_t nr, uint8_t* out) {
  if (!is_tiled_layout(w.type)) throw std::invalid_argument("tiled_rows_to_rows: " + std::string(weight_type_name(w.type)) + " is not tiled");
  const TileGeometry g(w);
  const int64_t dwords = g.block_bytes / 4;
  for (int64_t r = r0; r < r0 + nr; ++r) {
    const uint8_t* tile = w.data + (r / kTileLayoutRows) * g.tile_bytes();
    const int64_t j = r % kTileLayoutRows;
    uint8_t* row = out + (r - r0) * g.row_bytes;
    for (int64_t s = 0; s < g.blocks; ++s)
      for (int64_t k = 0; k < dwords; ++k)
        std::memcpy(row + s * g.block_bytes + 4 * k, tile + s * kTileLayoutRows * g.block_bytes + 64 * k + 4 * j, 4);
  }
}

WeightView row_view(const WeightView& w, int64_t r, uint8_t* buf) {
  WeightView v = w;
  v.rows = 1;
  if (!is_tiled_layout(w.type)) {
    v.data = w.data + r * row_bytes(w.type, w.cols);
    return v;
  }
  tiled_rows_to_rows(w, r, 1, buf);
  v.type = row_layout_of(w.type);
  v.data = buf;
  return v;
}

}  // namespace strata
