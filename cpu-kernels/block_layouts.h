// Byte layouts of the GGUF block formats, identical to ggml's (little-endian, packed).
#pragma once

#include <cstdint>

namespace strata {

constexpr int kQK = 32;    // elements per Q8_0 / Q4_0 block
constexpr int kQKK = 256;  // elements per K-quant super-block

#pragma pack(push, 1)
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;            // f16 scale
  uint8_t qs[kQK / 2];   // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_K {
  uint16_t d, dmin;      // f16 super-block scales of the 6-bit sub-block scales and mins
  uint8_t scales[12];    // 8 (scale, min) pairs of 6 bits, packed
  uint8_t qs[kQKK / 2];  // 4-bit quants: 64-element chunks, low nibbles first half, high second
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];  // fifth bit of each quant
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];      // low 4 bits
  uint8_t qh[kQKK / 4];      // high 2 bits
  int8_t scales[kQKK / 16];  // 8-bit sub-block scales
  uint16_t d;                // f16 super-block scale
};
// Older and lower-bit GGUF formats (ggml-common.h layouts).
struct BlockQ4_1 {
  uint16_t d, m;          // f16 scale and offset: x = d·q + m
  uint8_t qs[kQK / 2];    // as Q4_0
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];          // fifth bit of element j: bit j of this little-endian uint32
  uint8_t qs[kQK / 2];    // low four bits, as Q4_0; x = d·(q − 16)
};
struct BlockQ5_1 {
  uint16_t d, m;          // x = d·q + m
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // per 16 elements: scale (low 4 bits) and min (high 4 bits)
  uint8_t qs[kQKK / 4];       // 2-bit quants: per 128 elements 32 bytes, four 2-bit planes
  uint16_t d, dmin;           // f16 super-block scales of the scales and the mins
};
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];    // third bit of each quant (set: the quant is not offset by −4)
  uint8_t qs[kQKK / 4];       // low 2 bits, laid out as Q2_K's
  uint8_t scales[12];         // 16 signed 6-bit scales (+32), packed
  uint16_t d;
};
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQK / 2];        // indices into the 16 non-linear levels, as Q4_0's nibbles
};
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;          // high 2 bits of the eight 6-bit sub-block scales (+32)
  uint8_t scales_l[4];        // low 4 bits, two per byte
  uint8_t qs[kQKK / 2];       // per 32 elements 16 bytes, as IQ4_NL
};
// The lattice i-quants: groups of 8 (IQ3: 4) elements are one point of a published codebook
// (iq_grids.h) with separate sign bits; one f16 scale per 256 and small odd sub-block scales.
struct BlockIQ2_XXS {
  uint16_t d;
  uint16_t qs[kQKK / 8];      // per 32: four grid indices (bytes), then four 7-bit sign fields
                              // and a 4-bit scale in the top of the second 32-bit word
};
struct BlockIQ2_XS {
  uint16_t d;
  uint16_t qs[kQKK / 8];      // per 8 elements: 9-bit grid index, 7-bit sign field above it
  uint8_t scales[kQKK / 32];  // a 4-bit scale per 16 (low nibble first)
};
struct BlockIQ2_S {
  uint16_t d;
  uint8_t qs[kQKK / 4];       // low 8 bits of 32 grid indices, then 32 sign bytes
  uint8_t qh[kQKK / 32];      // per 32: the 2 high index bits of its four points
  uint8_t scales[kQKK / 32];  // a 4-bit scale per 16
};
struct BlockIQ3_XXS {
  uint16_t d;
  uint8_t qs[3 * kQKK / 8];   // 64 grid indices (4 elements each), then per 32 a 32-bit word of
                              // four 7-bit sign fields and a 4-bit scale on top
};
struct BlockIQ3_S {
  uint16_t d;
  uint8_t qs[kQKK / 4];       // low 8 bits of 64 grid indices
  uint8_t qh[kQKK / 32];      // their ninth bits, 8 per 32
  uint8_t signs[kQKK / 8];    // one bit per element
  uint8_t scales[kQKK / 64];  // a 4-bit scale per 32
};
struct BlockIQ1_S {
  uint16_t d;
  uint8_t qs[kQKK / 8];       // low 8 bits of 32 grid indices
  uint16_t qh[kQKK / 32];     // per 32: 3 high index bits per point, a 3-bit scale, the shift's sign
};
struct BlockIQ1_M {
  uint8_t qs[kQKK / 8];       // low 8 bits of 32 grid indices
  uint8_t qh[kQKK / 16];      // per 16: 3 high index bits and the shift's sign, for each of two points
  uint8_t scales[kQKK / 32];  // 3-bit scales per 16; the top nibbles of the four 16-bit words: the f16 scale
};
#pragma pack(pop)

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockIQ2_XXS) == 66);
static_assert(sizeof(BlockIQ2_XS) == 74);
static_assert(sizeof(BlockIQ2_S) == 82);
static_assert(sizeof(BlockIQ3_XXS) == 98);
static_assert(sizeof(BlockIQ3_S) == 110);
static_assert(sizeof(BlockIQ1_S) == 50);
static_assert(sizeof(BlockIQ1_M) == 56);

// The 16 levels an IQ4_NL / IQ4_XS index selects (a published table of the format).
// Internal linkage, as the helpers below are static: the per-instruction-set kernel files
// include this, and must not share an out-of-line copy (tests/checks/isa_objects.sh).
constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// The signed 6-bit scale (−32..31) of sub-block j (0..15) of a Q3_K block: low 4 bits in
// scales[j] (j < 8) or scales[j − 8] >> 4, high 2 bits in scales[8 + j % 4] at bit 2·(j / 4).
static inline int q3_k_scale(int j, const uint8_t* q) {
  const int lo = j < 8 ? (q[j] & 0xF) : (q[j - 8] >> 4);
  const int hi = (q[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

// The tiled layout's Q3_K_T16 (tile_layout.h) moves the third bits within each hmask byte: bit
// 4h + j of a stored byte (element 128h + 32j + l) lies at bit kQ3KTiledHighBit[4h + j] of the
// tiled one. There plane j of half h, masked in place after the quant bytes are shifted right
// by 2j − e (e = kQ3KTiledExponent[4h + j]: the plane times 2^e), finds its third bit right
// above it, at bit e + 2 (half 1's planes 0 and 1 after the hmask bytes are shifted left by
// two), so that one select merges the two into the 3-bit value times 2^e, with at most one
// shift of each kind per two planes (qdot_tile_decoders.inc's QtQ3KPlanes).
constexpr int kQ3KTiledHighBit[8] = {2, 4, 6, 7, 0, 1, 3, 5};
constexpr int kQ3KTiledExponent[8] = {0, 2, 4, 5, 0, 1, 1, 3};
static_assert([] {
  int seen = 0;
  for (int b = 0; b < 8; ++b) {
    const int hm_shift = b == 4 || b == 5 ? 2 : 0, e = kQ3KTiledExponent[b];
    if (kQ3KTiledHighBit[b] + hm_shift != e + 2 || e > 2 * (b % 4) || e > 5) return false;
    seen |= 1 << kQ3KTiledHighBit[b];
  }
  return seen == 0xFF;  // a permutation of the byte's bits
}());

// The signed 6-bit scale (−32..31) of sub-block j (0..7) of an IQ4_XS block.
static inline int iq4_xs_scale(int j, const BlockIQ4_XS& b) {
  const int lo = (b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF;
  const int hi = (b.scales_h >> (2 * j)) & 3;
  return (lo | (hi << 4)) - 32;
}
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// The 6-bit (scale, min) of sub-block j (0..7) of a Q4_K/Q5_K block.
static inline void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace strata
