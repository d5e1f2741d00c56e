// Weights repacked at load into the layout the integer-dot tiles read (qdot_tiles.inc): rows in
// tiles of 16, each tile's super-blocks one after another, and within a super-block its dwords
// interleaved across the tile's rows — byte 4k + i of row j's super-block s lies at
//   tile · 16 · row_bytes + s · 16 · block_bytes + 64k + 4j + i
// (row_bytes and block_bytes of the tiled type: a stored block not a whole number of dwords is
// padded with zeros to one).
// A tile's super-block is then 16 · block_bytes contiguous bytes whose k-th 64 bytes are the
// vector the tiles otherwise gather from 16 rows and transpose in registers (16 loads, 12
// inserts and 8 unpacks for 4 registers): with this layout one load each, and one stream per
// tile instead of 16. Same bytes (Q6_K, Q3_K: two padding bytes a block), same products; only
// the order moves — and, in Q3_K's hmask bytes, the order of the bits within each byte
// (block_layouts.h's kQ3KTiledHighBit: where a decode step finds them cheapest).
//
// The layouts are types of their own (WeightType::Q4_K_T16, Q5_K_T16, Q6_K_T16, Q2_K_T16,
// Q3_K_T16), so that code that does
// not know them refuses them by name instead of reading their bytes as rows. Kernels that have
// no tiled path read a row through tiled_rows_to_rows() (a gather of its dwords).
#pragma once

#include <cstdint>
#include <optional>

#include "cpu-kernels/weight_view.h"

namespace strata {

constexpr int64_t kTileLayoutRows = 16;

// Whether t is an in-memory tiled layout, and the stored type it repacks.
bool is_tiled_layout(WeightType t);
WeightType row_layout_of(WeightType t);  // t itself when it is not tiled
// The tiled layout of a stored type, or nullopt where there is none (Q2_K, Q3_K, Q4_K, Q5_K and
// Q6_K, whose tile decoders read whole dwords; Q6_K's 210-byte and Q3_K's 110-byte blocks are
// padded to 212 and 112 in the layout, the two bytes zero).
std::optional<WeightType> tiled_layout_of(WeightType t);
// Whether w can be repacked: its type has a tiled layout, rows % 16 == 0, cols % 256 == 0.
bool can_tile(const WeightView& w);
// Bytes w (can_tile) takes repacked: weight_data_bytes(w), or more where blocks are padded.
int64_t tiled_data_bytes(const WeightView& w);

// w (can_tile) repacked into out (tiled_data_bytes(w) bytes; any alignment, 64 bytes the
// fastest); returns the view of out, of type tiled_layout_of(w.type). Throws
// std::invalid_argument naming the shape or type when w cannot be tiled.
WeightView repack_to_tiles(const WeightView& w, uint8_t* out);
// Rows [r0, r0 + nr) of a tiled w in the stored type's row layout, into out (nr · the stored
// type's row bytes).
void tiled_rows_to_rows(const WeightView& w, int64_t r0, int64_t nr, uint8_t* out);
// Row r of w in its row layout: w's own bytes where it is not tiled, else gathered into buf
// (row_bytes(w.type, w.cols) bytes: at least the stored row's); the view of that one row (rows = 1).
WeightView row_view(const WeightView& w, int64_t r, uint8_t* buf);

}  // namespace strata
