// One super-block (256 elements) of a lattice i-quant in integer form: element i is
// D · sc[i / 16] · lv[i], with lv an int8 level (the codebook value with its sign; for IQ1_S
// and IQ1_M 8 · value ± 1, the shift folded in), sc a small odd scale and D one float per block
// (the f16 scale times 1/8, 1/4 or 1). The products are exact in f32, so D · sc · lv equals the
// formats' own float dequantization bit for bit; the integer dots (qdot.h) sum lv · q exactly.
//
// The scalar dequantizers, the integer dots' scalar twins and the per-instruction-set kernels all
// decode through these, so every path reads a block the same way. The functions are static: each
// instruction-set file keeps its own copy (tests/checks/isa_objects.sh).
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu-kernels/block_layouts.h"
#include "cpu-kernels/float_formats.h"
#include "cpu-kernels/iq_grids.h"

namespace strata {

static inline uint16_t iq_le16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
static inline uint32_t iq_le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
static inline uint64_t iq_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Eight magnitudes (bytes 1..127) with the bytes of a 0x00/0xFF mask negated, in one word: a
// negated byte is (m ^ 0xFF) + 1, which never carries into the next byte for m >= 1.
static inline void iq_put_signed8(int8_t* dst, uint64_t mag, uint64_t mask) {
  const uint64_t v = (mag ^ mask) + (mask & 0x0101010101010101ull);
  std::memcpy(dst, &v, 8);
}

// IQ2_XXS (66 bytes): per 32 elements two 32-bit words: four grid indices; four 7-bit sign
// fields and the 4-bit scale s on top (sub-block scale d · (2s + 1) / 8).
// Each type's head: the sixteen odd scales (one per 16 elements) and the f16 bits of its block
// scale (D = that scale times the type's multiplier); the vector kernels decode the groups
// themselves and take these.
constexpr float kIq2XxsMul = 0.125f;
static inline uint16_t iq2_xxs_head(const uint8_t* blk, int16_t* sc) {
  for (int ib = 0; ib < 8; ++ib)
    sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * (iq_le32(blk + 6 + 8 * ib) >> 28) + 1);
  return iq_le16(blk);
}
static inline float iq2_xxs_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  for (int ib = 0; ib < 8; ++ib) {
    const uint32_t idx = iq_le32(blk + 2 + 8 * ib), aux = iq_le32(blk + 6 + 8 * ib);
    for (int l = 0; l < 4; ++l)
      iq_put_signed8(lv + 32 * ib + 8 * l, g.iq2xxs[(idx >> (8 * l)) & 0xFF], g.even_signs[(aux >> (7 * l)) & 127]);
  }
  return f16_to_f32(iq2_xxs_head(blk, sc)) * kIq2XxsMul;
}

// IQ2_XS (74 bytes): per 8 elements a 16-bit word: 9-bit grid index, 7-bit sign field; a 4-bit
// scale per 16.
// A 4-bit scale per 16, two per byte (low nibble first): odd scales 2s + 1.
static inline void iq_nibble_scales(const uint8_t* scales, int16_t* sc) {
  for (int k = 0; k < 16; ++k) sc[k] = static_cast<int16_t>(2 * ((scales[k / 2] >> (4 * (k % 2))) & 0xF) + 1);
}
constexpr float kIq2XsMul = 0.125f;
static inline uint16_t iq2_xs_head(const uint8_t* blk, int16_t* sc) {
  iq_nibble_scales(blk + 66, sc);
  return iq_le16(blk);
}
static inline float iq2_xs_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  for (int k = 0; k < 32; ++k) {
    const uint16_t q = iq_le16(blk + 2 + 2 * k);
    iq_put_signed8(lv + 8 * k, g.iq2xs[q & 511], g.even_signs[q >> 9]);
  }
  return f16_to_f32(iq2_xs_head(blk, sc)) * kIq2XsMul;
}

// IQ2_S (82 bytes): 32 low index bytes, 32 sign bytes, per 32 a byte of 2-bit index tops, a
// 4-bit scale per 16.
constexpr float kIq2SMul = 0.125f;
static inline uint16_t iq2_s_head(const uint8_t* blk, int16_t* sc) {
  iq_nibble_scales(blk + 74, sc);
  return iq_le16(blk);
}
static inline float iq2_s_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  const uint8_t *qs = blk + 2, *signs = blk + 34, *qh = blk + 66;
  for (int k = 0; k < 32; ++k) {
    const int idx = qs[k] | ((qh[k / 4] >> (2 * (k % 4))) & 3) << 8;
    iq_put_signed8(lv + 8 * k, g.iq2s[idx], g.sign_mask[signs[k]]);
  }
  return f16_to_f32(iq2_s_head(blk, sc)) * kIq2SMul;
}

// IQ3_XXS (98 bytes): 64 grid indices of 4 elements, then per 32 a word of four 7-bit sign
// fields (one per 8) and the 4-bit scale on top (sub-block scale d · (2s + 1) / 4).
constexpr float kIq3XxsMul = 0.25f;
static inline uint16_t iq3_xxs_head(const uint8_t* blk, int16_t* sc) {
  for (int ib = 0; ib < 8; ++ib)
    sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * (iq_le32(blk + 66 + 4 * ib) >> 28) + 1);
  return iq_le16(blk);
}
static inline float iq3_xxs_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  const uint8_t* qs = blk + 2;
  for (int ib = 0; ib < 8; ++ib) {
    const uint32_t aux = iq_le32(blk + 66 + 4 * ib);
    for (int l = 0; l < 4; ++l) {
      const uint64_t mag = g.iq3xxs[qs[8 * ib + 2 * l]] | uint64_t{g.iq3xxs[qs[8 * ib + 2 * l + 1]]} << 32;
      iq_put_signed8(lv + 32 * ib + 8 * l, mag, g.even_signs[(aux >> (7 * l)) & 127]);
    }
  }
  return f16_to_f32(iq3_xxs_head(blk, sc)) * kIq3XxsMul;
}

// IQ3_S (110 bytes): 64 low index bytes, per 32 a byte of ninth index bits, a sign bit per
// element, a 4-bit scale per 32 (sub-block scale d · (2s + 1)).
constexpr float kIq3SMul = 1.0f;
static inline uint16_t iq3_s_head(const uint8_t* blk, int16_t* sc) {
  for (int ib = 0; ib < 8; ++ib)
    sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * ((blk[106 + ib / 2] >> (4 * (ib % 2))) & 0xF) + 1);
  return iq_le16(blk);
}
static inline float iq3_s_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  const uint8_t *qs = blk + 2, *qh = blk + 66, *signs = blk + 74;
  for (int ib = 0; ib < 8; ++ib) {
    for (int l = 0; l < 4; ++l) {
      const int i1 = qs[8 * ib + 2 * l] | ((qh[ib] >> (2 * l)) & 1) << 8;
      const int i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] >> (2 * l + 1)) & 1) << 8;
      const uint64_t mag = g.iq3s[i1] | uint64_t{g.iq3s[i2]} << 32;
      iq_put_signed8(lv + 32 * ib + 8 * l, mag, g.sign_mask[signs[4 * ib + l]]);
    }
  }
  return f16_to_f32(iq3_s_head(blk, sc)) * kIq3SMul;
}

// IQ1 levels: 8 · v ± 1 for the eight codebook values v of point idx.
static inline void iq1_put(int8_t* dst, const IqGrids& g, int idx, int shift) {
  uint64_t p = g.iq1s[idx];
  for (int j = 0; j < 8; ++j) dst[j] = static_cast<int8_t>(8 * static_cast<int8_t>(p >> (8 * j)) + shift);
}

// IQ1_S (50 bytes): 32 low index bytes; per 32 a 16-bit word: 3 high index bits per point, the
// 3-bit scale s (sub-block scale d · (2s + 1)) and on top the sign of the ±1/8 shift.
constexpr float kIq1SMul = 0.125f;
static inline uint16_t iq1_s_head(const uint8_t* blk, int16_t* sc) {
  for (int ib = 0; ib < 8; ++ib)
    sc[2 * ib] = sc[2 * ib + 1] = static_cast<int16_t>(2 * ((iq_le16(blk + 34 + 2 * ib) >> 12) & 7) + 1);
  return iq_le16(blk);
}
static inline float iq1_s_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  const uint8_t* qs = blk + 2;
  for (int ib = 0; ib < 8; ++ib) {
    const uint16_t h = iq_le16(blk + 34 + 2 * ib);
    const int shift = (h & 0x8000) ? -1 : 1;
    for (int l = 0; l < 4; ++l) iq1_put(lv + 32 * ib + 8 * l, g, qs[4 * ib + l] | ((h >> (3 * l)) & 7) << 8, shift);
  }
  return f16_to_f32(iq1_s_head(blk, sc)) * kIq1SMul;
}

// IQ1_M (56 bytes): 32 low index bytes; per 16 a byte: for each of its two points 3 high index
// bits and the shift's sign (bits 0-3, 4-7); four 16-bit words of 3-bit scales per 16 (four
// per word) whose top nibbles, in order, are the f16 block scale.
constexpr float kIq1MMul = 0.125f;
static inline uint16_t iq1_m_d16(const uint8_t* blk) {
  uint16_t w[4];
  for (int k = 0; k < 4; ++k) w[k] = iq_le16(blk + 48 + 2 * k);
  return static_cast<uint16_t>((w[0] >> 12) | ((w[1] >> 8) & 0x00F0) | ((w[2] >> 4) & 0x0F00) | (w[3] & 0xF000));
}
static inline uint16_t iq1_m_head(const uint8_t* blk, int16_t* sc) {
  for (int k = 0; k < 16; ++k) sc[k] = static_cast<int16_t>(2 * ((iq_le16(blk + 48 + 2 * (k / 4)) >> (3 * (k % 4))) & 7) + 1);
  return iq1_m_d16(blk);
}
static inline float iq1_m_unpack(const uint8_t* blk, const IqGrids& g, int8_t* lv, int16_t* sc) {
  const uint8_t *qs = blk, *qh = blk + 32;
  for (int k = 0; k < 32; ++k) {
    const int h = (qh[k / 2] >> (4 * (k % 2))) & 0xF;
    iq1_put(lv + 8 * k, g, qs[k] | (h & 7) << 8, (h & 8) ? -1 : 1);
  }
  return f16_to_f32(iq1_m_head(blk, sc)) * kIq1MMul;
}

}  // namespace strata
