#include "cpu-kernels/tile_layout.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu-kernels/block_layouts.h"

namespace strata {

bool is_tiled_layout(WeightType t) {
  return t == WeightType::Q4_K_T16 || t == WeightType::Q5_K_T16 || t == WeightType::Q6_K_T16 ||
         t == WeightType::Q2_K_T16 || t == WeightType::Q3_K_T16;
}

WeightType row_layout_of(WeightType t) {
  switch (t) {
    case WeightType::Q4_K_T16: return WeightType::Q4_K;
    case WeightType::Q5_K_T16: return WeightType::Q5_K;
    case WeightType::Q6_K_T16: return WeightType::Q6_K;
    case WeightType::Q2_K_T16: return WeightType::Q2_K;
    case WeightType::Q3_K_T16: return WeightType::Q3_K;
    default: return t;
  }
}

std::optional<WeightType> tiled_layout_of(WeightType t) {
  switch (t) {
    case WeightType::Q4_K: return WeightType::Q4_K_T16;
    case WeightType::Q5_K: return WeightType::Q5_K_T16;
    case WeightType::Q6_K: return WeightType::Q6_K_T16;
    case WeightType::Q2_K: return WeightType::Q2_K_T16;
    case WeightType::Q3_K: return WeightType::Q3_K_T16;
    default: return std::nullopt;
  }
}

bool can_tile(const WeightView& w) {
  return tiled_layout_of(w.type) && w.rows > 0 && w.rows % kTileLayoutRows == 0 && w.cols > 0 && w.cols % 256 == 0;
}

int64_t tiled_data_bytes(const WeightView& w) {
  const auto t = tiled_layout_of(row_layout_of(w.type));
  if (!t) throw std::invalid_argument("tiled_data_bytes: " + std::string(weight_type_name(w.type)) + " has no tiled layout");
  return w.rows * row_bytes(*t, w.cols);
}

namespace {

// A tiled type's geometry: its blocks (padded) and the stored blocks they hold.
struct TileGeometry {
  int64_t row_bytes, block_bytes, stored_block_bytes, blocks;
  explicit TileGeometry(WeightType tiled, int64_t cols)
      : row_bytes(strata::row_bytes(tiled, cols)),
        block_bytes(weight_type_info(tiled).block_bytes),
        stored_block_bytes(weight_type_info(row_layout_of(tiled)).block_bytes),
        blocks(cols / 256) {}
  int64_t tile_bytes() const { return kTileLayoutRows * row_bytes; }
  int64_t dwords() const { return block_bytes / 4; }
};

// Every hmask byte's value in Q3_K_T16 (to_tiled: its bits moved to kQ3KTiledHighBit) and
// back, as tables: repacking runs at load over every Q3_K block of the matrices it takes.
struct HighBitTables {
  uint8_t to_tiled[256], to_stored[256];
};
constexpr HighBitTables kHighBitTables = [] {
  HighBitTables t{};
  for (int v = 0; v < 256; ++v) {
    int moved = 0;
    for (int b = 0; b < 8; ++b) moved |= ((v >> b) & 1) << kQ3KTiledHighBit[b];
    t.to_tiled[v] = static_cast<uint8_t>(moved);
    t.to_stored[moved] = static_cast<uint8_t>(v);
  }
  return t;
}();

// Q3_K_T16's hmask bytes (the first 32 of a block) moved to the tiled layout's bits, or back.
void move_q3_k_high_bits(uint8_t* block, bool to_tiled) {
  const uint8_t* table = to_tiled ? kHighBitTables.to_tiled : kHighBitTables.to_stored;
  for (int l = 0; l < 32; ++l) block[l] = table[block[l]];
}

}  // namespace

WeightView repack_to_tiles(const WeightView& w, uint8_t* out) {
  if (!can_tile(w))
    throw std::invalid_argument("repack_to_tiles: " + std::string(weight_type_name(w.type)) + " [" +
                                std::to_string(w.rows) + ", " + std::to_string(w.cols) +
                                "] has no tiled layout (Q2_K, Q3_K, Q4_K, Q5_K or Q6_K, rows a multiple of 16, columns of 256)");
  const WeightType tiled = *tiled_layout_of(w.type);
  const TileGeometry g(tiled, w.cols);
  const int64_t stored_row = row_bytes(w.type, w.cols);
  uint8_t block[256] = {};  // one stored block, its padding zero
  for (int64_t t = 0; t < w.rows / kTileLayoutRows; ++t) {
    uint8_t* tile = out + t * g.tile_bytes();
    for (int64_t j = 0; j < kTileLayoutRows; ++j) {
      const uint8_t* row = w.data + (t * kTileLayoutRows + j) * stored_row;
      for (int64_t s = 0; s < g.blocks; ++s) {
        std::memcpy(block, row + s * g.stored_block_bytes, static_cast<size_t>(g.stored_block_bytes));
        if (tiled == WeightType::Q3_K_T16) move_q3_k_high_bits(block, true);
        uint8_t* dst = tile + s * kTileLayoutRows * g.block_bytes + 4 * j;
        for (int64_t k = 0; k < g.dwords(); ++k) std::memcpy(dst + 64 * k, block + 4 * k, 4);
      }
    }
  }
  WeightView v = w;
  v.type = tiled;
  v.data = out;
  return v;
}

void tiled_rows_to_rows(const WeightView& w, int64_t r0, int64_t nr, uint8_t* out) {
  if (!is_tiled_layout(w.type)) throw std::invalid_argument("tiled_rows_to_rows: " + std::string(weight_type_name(w.type)) + " is not tiled");
  const TileGeometry g(w.type, w.cols);
  const int64_t stored_row = row_bytes(row_layout_of(w.type), w.cols);
  uint8_t block[256];
  for (int64_t r = r0; r < r0 + nr; ++r) {
    const uint8_t* tile = w.data + (r / kTileLayoutRows) * g.tile_bytes();
    const int64_t j = r % kTileLayoutRows;
    uint8_t* row = out + (r - r0) * stored_row;
    for (int64_t s = 0; s < g.blocks; ++s) {
      const uint8_t* src = tile + s * kTileLayoutRows * g.block_bytes + 4 * j;
      for (int64_t k = 0; k < g.dwords(); ++k) std::memcpy(block + 4 * k, src + 64 * k, 4);
      if (w.type == WeightType::Q3_K_T16) move_q3_k_high_bits(block, false);
      std::memcpy(row + s * g.stored_block_bytes, block, static_cast<size_t>(g.stored_block_bytes));
    }
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
