// Facts about GGUF value types and ggml tensor type ids shared by the reader and the writer.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/format/gguf.h"

namespace strata::gguf_detail {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;
// Deepest nesting of arrays inside arrays the reader accepts.
inline constexpr int kMaxArrayDepth = 8;
// Most elements one metadata array may hold (vocabularies hold a few hundred thousand).
inline constexpr uint64_t kMaxArrayElems = uint64_t{1} << 24;

inline bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// Encoded size of a fixed-size value type; 0 for STRING and ARRAY.
inline uint64_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

// Fewest bytes one value of the type takes (string: its length; array: type + count).
inline uint64_t min_size(GgufType t) {
  if (t == GgufType::STRING) return 8;
  if (t == GgufType::ARRAY) return 12;
  return fixed_size(t);
}

std::string value_type_name(uint32_t t);
// ggml's name of a tensor type id ("q4_1", "iq2_xxs", ...), or "" when the id is unknown.
std::string ggml_type_name(uint32_t id);

}  // namespace strata::gguf_detail
