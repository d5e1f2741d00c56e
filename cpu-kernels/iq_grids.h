// The codebooks of the lattice i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and
// IQ1_M): the published tables of the GGUF formats, held packed (a level index per element) and
// expanded once, at first use, into the byte grids the kernels read.
#pragma once

#include <cstdint>

namespace strata {

struct IqGrids {
  // Eight magnitudes per point, one byte each (element 0 in the lowest byte): 8, 25 or 43.
  uint64_t iq2xxs[256];
  uint64_t iq2xs[512];
  uint64_t iq2s[1024];
  // Four magnitudes per point: IQ3_XXS 4, 12, ..., 52, 62; IQ3_S 1, 3, ..., 15.
  uint32_t iq3xxs[256];
  uint32_t iq3s[512];
  // Eight values per point, int8 −1, 0 or 1 (IQ1_S and IQ1_M share it).
  uint64_t iq1s[2048];
  // The published packed points of IQ2_XXS, IQ2_XS and IQ2_S (2 bits per element: 8, 25, 43),
  // IQ3_XXS and IQ3_S (3 bits per element: 4, 12, ..., 52, 62 and 1, 3, ..., 15), element 0 in
  // the lowest bits: tables small enough for lookups in vector registers.
  alignas(64) uint16_t iq2xxs_packed[256];
  alignas(64) uint16_t iq2xs_packed[512];
  alignas(64) uint16_t iq2s_packed[1024];
  alignas(64) uint16_t iq3xxs_packed[256];
  alignas(64) uint16_t iq3s_packed[512];
  // sign_mask[s]: byte j 0xFF where bit j of s is set, else 0.
  uint64_t sign_mask[256];
  // even_signs[f] = sign_mask[iq_signs_from7(f)]: a 7-bit sign field with its parity bit.
  uint64_t even_signs[128];
};

// Built on first use (thread-safe), then read-only.
const IqGrids& iq_grids();

// The eight sign bits of a 7-bit sign field of IQ2_XXS, IQ2_XS and IQ3_XXS: the eighth is the
// parity of the seven, so a group always has an even number of negative elements.
static inline uint8_t iq_signs_from7(uint32_t f) {
  f &= 127;
  return static_cast<uint8_t>(f | (static_cast<uint32_t>(__builtin_popcount(f)) & 1u) << 7);
}

}  // namespace strata
