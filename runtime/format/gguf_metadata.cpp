#include "runtime/format/gguf_metadata.h"

#include <cstdint>
#include <limits>

#include "runtime/common/error.h"

namespace strata {
namespace {

GgufType scalar_type(const nlohmann::json& v, bool in_array, const std::string& key) {
  if (v.is_boolean()) return GgufType::BOOL;
  if (v.is_string()) return GgufType::STRING;
  if (v.is_number_float()) return GgufType::F32;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (in_array) return u <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()) ? GgufType::I32 : GgufType::I64;
    return u <= std::numeric_limits<uint32_t>::max() ? GgufType::U32 : GgufType::U64;
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    return i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max() ? GgufType::I32
                                                                                                 : GgufType::I64;
  }
  throw Error("GGUF metadata key '" + key + "': value " + v.dump().substr(0, 40) + " has no GGUF type");
}

}  // namespace

std::vector<GgufKV> gguf_kvs_from_json(const nlohmann::json& metadata) {
  std::vector<GgufKV> out;
  // general.architecture first, by convention of GGUF readers.
  if (metadata.contains("general.architecture"))
    out.push_back({"general.architecture", GgufType::STRING, GgufType::U8, metadata["general.architecture"]});
  for (const auto& [key, v] : metadata.items()) {
    if (key == "general.architecture") continue;
    if (!v.is_array()) {
      out.push_back({key, scalar_type(v, false, key), GgufType::U8, v});
      continue;
    }
    GgufType elem = GgufType::I32;
    bool first = true;
    for (const auto& x : v) {
      GgufType t = scalar_type(x, true, key);
      if (first) elem = t;
      else if (t != elem) {
        // Widen mixed integer arrays; anything else is an error.
        if ((t == GgufType::I64 && elem == GgufType::I32) || (t == GgufType::I32 && elem == GgufType::I64))
          t = GgufType::I64;
        else
          throw Error("GGUF metadata key '" + key + "': array mixes value types");
      }
      elem = t;
      first = false;
    }
    out.push_back({key, GgufType::ARRAY, elem, v});
  }
  return out;
}

}  // namespace strata
