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
#pragma pack(pop)

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// The 6-bit (scale, min) of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace strata
