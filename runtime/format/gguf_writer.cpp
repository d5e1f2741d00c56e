// GgufWriter: serializes metadata and tensors as GGUF v3, validating everything it is given
// so that what it writes reads back through parse_gguf.
#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/format/gguf.h"
#include "runtime/format/gguf_cursor.h"
#include "runtime/format/gguf_types.h"

namespace strata {
namespace {

using nlohmann::json;

struct Out {
  std::vector<uint8_t> b;
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void str(const std::string& s) {
    le(s.size(), 8);
    b.insert(b.end(), s.begin(), s.end());
  }
  void pad(uint64_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
  }
};

[[noreturn]] void bad_value(const std::string& key, const json& v, GgufType t) {
  throw_error({"", key, -1}, "value " + v.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 60) +
                                 " cannot be written as " +
                                 gguf_detail::value_type_name(static_cast<uint32_t>(t)));
}

void write_int(Out& o, const std::string& key, const json& v, GgufType t, int bytes, bool is_signed) {
  if (!v.is_number_integer()) bad_value(key, v, t);
  if (is_signed) {
    const int64_t lo = bytes == 8 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (8 * bytes - 1));
    const int64_t hi = bytes == 8 ? std::numeric_limits<int64_t>::max() : (int64_t{1} << (8 * bytes - 1)) - 1;
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) bad_value(key, v, t);
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) bad_value(key, v, t);
    o.le(static_cast<uint64_t>(x), bytes);
  } else {
    if (!v.is_number_unsigned() && v.get<int64_t>() < 0) bad_value(key, v, t);
    const uint64_t x = v.get<uint64_t>();
    if (bytes < 8 && x >= (uint64_t{1} << (8 * bytes))) bad_value(key, v, t);
    o.le(x, bytes);
  }
}

GgufType infer_type(const json& v, const std::string& key);

// Element type for an array whose type was not given: the type every element shares, with
// mixed i32/i64 widened to i64 and integers among reals written as f32.
GgufType infer_elements(const json& arr, const std::string& key) {
  if (arr.empty()) return GgufType::I32;
  GgufType t = infer_type(arr.front(), key);
  for (const auto& x : arr) {
    const GgufType u = infer_type(x, key);
    if (u == t) continue;
    const auto is_int = [](GgufType g) {
      return g == GgufType::I32 || g == GgufType::I64 || g == GgufType::U64;
    };
    if (is_int(t) && is_int(u) && t != GgufType::U64 && u != GgufType::U64)
      t = GgufType::I64;
    else if ((t == GgufType::F32 && is_int(u)) || (is_int(t) && u == GgufType::F32))
      t = GgufType::F32;
    else
      throw_error({"", key, -1}, "nested array mixes value types; give GgufKV::nested_types");
  }
  return t;
}

GgufType infer_type(const json& v, const std::string& key) {
  if (v.is_array()) return GgufType::ARRAY;
  if (v.is_boolean()) return GgufType::BOOL;
  if (v.is_string()) return GgufType::STRING;
  if (v.is_number_float()) return GgufType::F32;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) return GgufType::I32;
    return u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? GgufType::I64 : GgufType::U64;
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    return i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max()
               ? GgufType::I32
               : GgufType::I64;
  }
  throw_error({"", key, -1}, "value " + v.dump().substr(0, 60) + " has no GGUF type");
}

void write_value(Out& o, const GgufKV& kv, GgufType t, const json& v, int level);

// An array of elem_type values; `level` counts how deep below the key's own array it is.
void write_array(Out& o, const GgufKV& kv, GgufType elem_type, const json& v, int level) {
  if (!v.is_array()) bad_value(kv.key, v, GgufType::ARRAY);
  if (level >= gguf_detail::kMaxArrayDepth)
    throw_error({"", kv.key, -1}, "arrays nested deeper than " + std::to_string(gguf_detail::kMaxArrayDepth));
  o.le(static_cast<uint32_t>(elem_type), 4);
  o.le(v.size(), 8);
  for (const auto& x : v) write_value(o, kv, elem_type, x, level + 1);
}

void write_value(Out& o, const GgufKV& kv, GgufType t, const json& v, int level) {
  const std::string& key = kv.key;
  switch (t) {
    case GgufType::U8:
      return write_int(o, key, v, t, 1, false);
    case GgufType::I8:
      return write_int(o, key, v, t, 1, true);
    case GgufType::U16:
      return write_int(o, key, v, t, 2, false);
    case GgufType::I16:
      return write_int(o, key, v, t, 2, true);
    case GgufType::U32:
      return write_int(o, key, v, t, 4, false);
    case GgufType::I32:
      return write_int(o, key, v, t, 4, true);
    case GgufType::U64:
      return write_int(o, key, v, t, 8, false);
    case GgufType::I64:
      return write_int(o, key, v, t, 8, true);
    case GgufType::F32:
      if (!v.is_number()) bad_value(key, v, t);
      return o.le(std::bit_cast<uint32_t>(v.get<float>()), 4);
    case GgufType::F64:
      if (!v.is_number()) bad_value(key, v, t);
      return o.le(std::bit_cast<uint64_t>(v.get<double>()), 8);
    case GgufType::BOOL:
      if (!v.is_boolean()) bad_value(key, v, t);
      return o.le(v.get<bool>() ? 1 : 0, 1);
    case GgufType::STRING:
      if (!v.is_string()) bad_value(key, v, t);
      return o.str(v.get_ref<const std::string&>());
    case GgufType::ARRAY: {
      // level 1 is an element of the key's own array: its type is nested_types[0].
      const auto idx = static_cast<size_t>(level - 1);
      if (!v.is_array()) bad_value(key, v, t);
      const GgufType inner = idx < kv.nested_types.size() ? kv.nested_types[idx] : infer_elements(v, key);
      return write_array(o, kv, inner, v, level);
    }
  }
  throw_error({"", key, -1}, "unknown value type " + std::to_string(static_cast<uint32_t>(t)));
}

void write_kv(Out& o, const GgufKV& kv) {
  o.str(kv.key);
  o.le(static_cast<uint32_t>(kv.type), 4);
  if (kv.type == GgufType::ARRAY)
    write_array(o, kv, kv.array_type, kv.value, 0);
  else
    write_value(o, kv, kv.type, kv.value, 0);
}

}  // namespace

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
      alignment > std::numeric_limits<uint32_t>::max())
    throw Error("GGUF writer: alignment " + std::to_string(alignment) + " is not a power of two below 2^32");
}

void GgufWriter::add_kv(GgufKV kv) {
  if (!gguf_detail::valid_utf8(kv.key)) throw_error({"", kv.key, -1}, "GGUF key is not valid UTF-8");
  for (const auto& e : kv_)
    if (e.key == kv.key) throw_error({"", kv.key, -1}, "duplicate GGUF key");
  if (!gguf_detail::valid_value_type(static_cast<uint32_t>(kv.type)))
    throw_error({"", kv.key, -1}, "unknown value type " + std::to_string(static_cast<uint32_t>(kv.type)));
  if (kv.key == "general.alignment") {
    if (kv.type != GgufType::U32 || !kv.value.is_number_unsigned() || kv.value.get<uint64_t>() != alignment_)
      throw_error({"", kv.key, -1},
                  "must be a u32 equal to the writer's alignment " + std::to_string(alignment_));
  }
  Out probe;  // validates the value now rather than at write()
  write_kv(probe, kv);
  kv_.push_back(std::move(kv));
}

void GgufWriter::add_tensor(std::string name, WeightType type, std::vector<uint64_t> ne,
                            std::vector<uint8_t> data) {
  const ErrorContext where{"", name, -1};
  if (!gguf_detail::valid_utf8(name)) throw_error(where, "tensor name is not valid UTF-8");
  for (const auto& t : tensors_)
    if (t.name == name) throw_error(where, "duplicate tensor name");
  if (ne.empty() || ne.size() > 4)
    throw_error(where, "n_dims " + std::to_string(ne.size()) + " is not in 1..4");
  if (!ggml_from_weight_type(type))
    throw_error(where, "type " + std::string(weight_type_name(type)) + " cannot be stored in GGUF");
  const auto& info = weight_type_info(type);
  if (ne[0] % info.block_elems != 0)
    throw_error(where, "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the block size " +
                           std::to_string(info.block_elems));
  uint64_t n = 1;
  for (uint64_t d : ne)
    if (__builtin_mul_overflow(n, d, &n)) throw_error(where, "element count overflows 64 bits");
  const auto bytes = weight_type_bytes(type, n);
  if (!bytes || *bytes != data.size())
    throw_error(where, "data holds " + std::to_string(data.size()) + " bytes; " + std::to_string(n) + " " +
                           std::string(weight_type_name(type)) + " elements take " +
                           (bytes ? std::to_string(*bytes) : std::string("more than 2^64")));
  tensors_.push_back({std::move(name), type, std::move(ne), std::move(data)});
}

void GgufWriter::write(const std::filesystem::path& path) const {
  const std::string name = path.string();
  bool add_alignment = alignment_ != gguf_detail::kDefaultAlignment;
  for (const auto& kv : kv_)
    if (kv.key == "general.alignment") add_alignment = false;

  Out h;
  h.b = {'G', 'G', 'U', 'F'};
  h.le(gguf_detail::kGgufVersion, 4);
  h.le(tensors_.size(), 8);
  h.le(kv_.size() + (add_alignment ? 1 : 0), 8);
  for (const auto& kv : kv_) write_kv(h, kv);
  if (add_alignment) write_kv(h, {"general.alignment", GgufType::U32, GgufType::U8, alignment_});
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    h.str(t.name);
    h.le(t.ne.size(), 4);
    for (uint64_t d : t.ne) h.le(d, 8);
    h.le(static_cast<uint32_t>(*ggml_from_weight_type(t.type)), 4);
    h.le(offset, 8);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  h.pad(alignment_);

  const std::vector<uint8_t> zeros(alignment_, 0);
  std::vector<std::pair<const void*, size_t>> pieces = {{h.b.data(), h.b.size()}};
  for (const auto& t : tensors_) {
    pieces.emplace_back(t.data.data(), t.data.size());
    pieces.emplace_back(zeros.data(), (alignment_ - t.data.size() % alignment_) % alignment_);
  }
  write_output_file(name, pieces, "output");
}

}  // namespace strata
