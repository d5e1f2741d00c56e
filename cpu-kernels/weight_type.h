// Weight storage types and their block geometry. The single source of truth for
// "how many bytes do N elements of type T take" across formats, kernels and the tier.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

enum class WeightType : uint8_t {
  F32,
  F16,
  BF16,
  F8_E4M3,  // one byte per element; block scales live in a companion tensor
  F8_E8M0,  // power-of-two scale bytes (V4 `.scale`, MXFP4 scales)
  MXFP4,    // two E2M1 values per byte, low nibble first; E8M0 scales per 32 in a companion tensor
  Q8_0,
  Q4_0,
  Q4_K,
  Q5_K,
  Q6_K,
  I8,
  U8,
  I16,
  I32,
  I64,
  BOOL,
  // Lower-bit GGUF block formats (appended: the values above keep their numbers).
  Q4_1,
  Q5_0,
  Q5_1,
  Q2_K,
  Q3_K,
  IQ4_NL,
  IQ4_XS,
  // The lattice i-quants (iq_grids.h).
  IQ2_XXS,
  IQ2_XS,
  IQ2_S,
  IQ3_XXS,
  IQ3_S,
  IQ1_S,
  IQ1_M,
  // In-memory layouts, never stored in a file: K-quant (Q2_K to Q6_K) repacked at load into tiles of
  // 16 rows whose blocks are interleaved a dword at a time (tile_layout.h).
  Q4_K_T16,
  Q5_K_T16,
  Q6_K_T16,  // its 210-byte blocks padded to 212: whole dwords
  Q2_K_T16,
  Q3_K_T16,  // its 110-byte blocks padded to 112
};

struct WeightTypeInfo {
  std::string_view name;  // e.g. "bf16", "q4_k", "f8_e4m3"
  uint32_t block_elems;   // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
  bool is_float;          // dequantizes to real values on its own (or with its companion scales)
};

const WeightTypeInfo& weight_type_info(WeightType t);
inline std::string_view weight_type_name(WeightType t) { return weight_type_info(t).name; }

// Parses a name as printed by weight_type_name (case-insensitive; "q8_0", "Q4_K", "fp8" and
// "fp4" accepted as aliases of f8_e4m3 and mxfp4). nullopt when unknown, and for the in-memory
// layouts (Q4_K_T16, ...), which no file or flag may name.
std::optional<WeightType> weight_type_from_name(std::string_view name);

// Bytes taken by n_elems elements, or nullopt when n_elems is not a whole number of
// blocks or the result overflows uint64.
std::optional<uint64_t> weight_type_bytes(WeightType t, uint64_t n_elems);

// The GGUF block-quantized types strata reads and writes (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the
// K-quants Q2_K..Q6_K, IQ4_NL, IQ4_XS, then the lattice i-quants IQ3_S, IQ3_XXS, IQ2_S, IQ2_XS,
// IQ2_XXS, IQ1_M, IQ1_S), in that order.
const std::vector<WeightType>& gguf_block_types();
bool is_gguf_block_type(WeightType t);
// Their names separated by spaces, for messages.
std::string gguf_block_type_names();

}  // namespace strata
