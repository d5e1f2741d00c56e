// GGUF v3 header parsing (shared by the file and in-memory readers) and type mapping.
#include "runtime/format/gguf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/format/gguf_cursor.h"
#include "runtime/format/gguf_types.h"

namespace strata {

using gguf_detail::Cursor;

namespace gguf_detail {

std::string value_type_name(uint32_t t) {
  static constexpr std::array<const char*, 13> kNames = {
      "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return t < kNames.size() ? kNames[t] : "type " + std::to_string(t);
}

std::string ggml_type_name(uint32_t id) {
  // ggml-common.h numbering; "" marks ids ggml retired.
  static constexpr std::array<const char*, 40> kNames = {
      "f32",    "f16",   "q4_0",  "q4_1",   "",      "",      "q5_0",    "q5_1",   "q8_0",    "q8_1",
      "q2_k",   "q3_k",  "q4_k",  "q5_k",   "q6_k",  "q8_k",  "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s",
      "iq4_nl", "iq3_s", "iq2_s", "iq4_xs", "i8",    "i16",   "i32",     "i64",    "f64",     "iq1_m",
      "bf16",   "",      "",      "",       "tq1_0", "tq2_0", "",        "",       "",        "mxfp4"};
  return id < kNames.size() ? kNames[id] : "";
}

}  // namespace gguf_detail

std::optional<WeightType> weight_type_from_ggml(uint32_t ggml_type) {
  switch (static_cast<GgmlType>(ggml_type)) {
    case GgmlType::F32:
      return WeightType::F32;
    case GgmlType::F16:
      return WeightType::F16;
    case GgmlType::BF16:
      return WeightType::BF16;
    case GgmlType::Q8_0:
      return WeightType::Q8_0;
    case GgmlType::Q4_0:
      return WeightType::Q4_0;
    case GgmlType::Q4_K:
      return WeightType::Q4_K;
    case GgmlType::Q5_K:
      return WeightType::Q5_K;
    case GgmlType::Q6_K:
      return WeightType::Q6_K;
    case GgmlType::Q4_1:
      return WeightType::Q4_1;
    case GgmlType::Q5_0:
      return WeightType::Q5_0;
    case GgmlType::Q5_1:
      return WeightType::Q5_1;
    case GgmlType::Q2_K:
      return WeightType::Q2_K;
    case GgmlType::Q3_K:
      return WeightType::Q3_K;
    case GgmlType::IQ4_NL:
      return WeightType::IQ4_NL;
    case GgmlType::IQ4_XS:
      return WeightType::IQ4_XS;
    case GgmlType::IQ2_XXS:
      return WeightType::IQ2_XXS;
    case GgmlType::IQ2_XS:
      return WeightType::IQ2_XS;
    case GgmlType::IQ3_XXS:
      return WeightType::IQ3_XXS;
    case GgmlType::IQ1_S:
      return WeightType::IQ1_S;
    case GgmlType::IQ3_S:
      return WeightType::IQ3_S;
    case GgmlType::IQ2_S:
      return WeightType::IQ2_S;
    case GgmlType::IQ1_M:
      return WeightType::IQ1_M;
    case GgmlType::I8:
      return WeightType::I8;
    case GgmlType::I16:
      return WeightType::I16;
    case GgmlType::I32:
      return WeightType::I32;
    case GgmlType::I64:
      return WeightType::I64;
    // ggml's MXFP4 packs a scale byte into each 17-byte block; strata's MXFP4 keeps scales
    // in a companion tensor, so the bytes cannot be used as they are.
    case GgmlType::MXFP4:
    case GgmlType::F64:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<GgmlType> ggml_from_weight_type(WeightType t) {
  switch (t) {
    case WeightType::F32:
      return GgmlType::F32;
    case WeightType::F16:
      return GgmlType::F16;
    case WeightType::BF16:
      return GgmlType::BF16;
    case WeightType::Q8_0:
      return GgmlType::Q8_0;
    case WeightType::Q4_0:
      return GgmlType::Q4_0;
    case WeightType::Q4_K:
      return GgmlType::Q4_K;
    case WeightType::Q5_K:
      return GgmlType::Q5_K;
    case WeightType::Q6_K:
      return GgmlType::Q6_K;
    case WeightType::Q4_1:
      return GgmlType::Q4_1;
    case WeightType::Q5_0:
      return GgmlType::Q5_0;
    case WeightType::Q5_1:
      return GgmlType::Q5_1;
    case WeightType::Q2_K:
      return GgmlType::Q2_K;
    case WeightType::Q3_K:
      return GgmlType::Q3_K;
    case WeightType::IQ4_NL:
      return GgmlType::IQ4_NL;
    case WeightType::IQ4_XS:
      return GgmlType::IQ4_XS;
    case WeightType::IQ2_XXS:
      return GgmlType::IQ2_XXS;
    case WeightType::IQ2_XS:
      return GgmlType::IQ2_XS;
    case WeightType::IQ3_XXS:
      return GgmlType::IQ3_XXS;
    case WeightType::IQ1_S:
      return GgmlType::IQ1_S;
    case WeightType::IQ3_S:
      return GgmlType::IQ3_S;
    case WeightType::IQ2_S:
      return GgmlType::IQ2_S;
    case WeightType::IQ1_M:
      return GgmlType::IQ1_M;
    case WeightType::I8:
      return GgmlType::I8;
    case WeightType::I16:
      return GgmlType::I16;
    case WeightType::I32:
      return GgmlType::I32;
    case WeightType::I64:
      return GgmlType::I64;
    default:
      return std::nullopt;
  }
}

const GgufKV* GgufFile::find(std::string_view key) const {
  for (const auto& e : kv)
    if (e.key == key) return &e;
  return nullptr;
}

nlohmann::json GgufFile::metadata_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& e : kv) out[e.key] = e.value;
  return out;
}

namespace {

// Element types of nested arrays, one per level below a key's top-level array.
struct Nesting {
  std::vector<GgufType> types;
  bool consistent = true;
};

nlohmann::json read_value(Cursor& c, GgufType t, int depth, Nesting& nest);

nlohmann::json read_array(Cursor& c, int depth, Nesting& nest, GgufType& elem_type) {
  if (depth >= gguf_detail::kMaxArrayDepth)
    c.fail("arrays nested deeper than " + std::to_string(gguf_detail::kMaxArrayDepth) + " levels", c.pos());
  const uint64_t type_at = c.pos();
  const uint32_t et = c.u32("array element type");
  if (!gguf_detail::valid_value_type(et)) c.fail("unknown array element type " + std::to_string(et), type_at);
  elem_type = static_cast<GgufType>(et);
  if (depth >= 1) {
    const auto level = static_cast<size_t>(depth - 1);
    if (nest.types.size() == level)
      nest.types.push_back(elem_type);
    else if (nest.types[level] != elem_type)
      nest.consistent = false;
  }
  const uint64_t count_at = c.pos();
  const uint64_t n = c.u64("array length");
  const uint64_t min = gguf_detail::min_size(elem_type);
  if (n > c.header_left() / min)
    c.fail("array of " + std::to_string(n) + " " + gguf_detail::value_type_name(et) +
               " values cannot fit in the " + std::to_string(c.header_left()) + " bytes left",
           count_at);
  if (n > gguf_detail::kMaxArrayElems)
    c.fail("array of " + std::to_string(n) + " values is longer than the reader accepts (" +
               std::to_string(gguf_detail::kMaxArrayElems) + ")",
           count_at);
  nlohmann::json arr = nlohmann::json::array();
  for (uint64_t i = 0; i < n; ++i) arr.push_back(read_value(c, elem_type, depth + 1, nest));
  return arr;
}

nlohmann::json read_value(Cursor& c, GgufType t, int depth, Nesting& nest) {
  const uint64_t at = c.pos();
  switch (t) {
    case GgufType::U8:
      return c.u8("u8 value");
    case GgufType::I8:
      return static_cast<int8_t>(c.u8("i8 value"));
    case GgufType::U16:
      return c.u16("u16 value");
    case GgufType::I16:
      return static_cast<int16_t>(c.u16("i16 value"));
    case GgufType::U32:
      return c.u32("u32 value");
    case GgufType::I32:
      return static_cast<int32_t>(c.u32("i32 value"));
    case GgufType::U64:
      return c.u64("u64 value");
    case GgufType::I64:
      return static_cast<int64_t>(c.u64("i64 value"));
    case GgufType::F32:
      return static_cast<double>(std::bit_cast<float>(c.u32("f32 value")));
    case GgufType::F64:
      return std::bit_cast<double>(c.u64("f64 value"));
    case GgufType::BOOL: {
      const uint8_t b = c.u8("bool value");
      if (b > 1) c.fail("bool value " + std::to_string(b) + " is not 0 or 1", at);
      return b == 1;
    }
    case GgufType::STRING:
      return c.string("string value");
    case GgufType::ARRAY: {
      GgufType elem = GgufType::U8;
      return read_array(c, depth, nest, elem);
    }
  }
  c.fail("unknown value type", at);
}

void read_kv(Cursor& c, GgufFile& f, uint64_t index, std::unordered_set<std::string>& seen) {
  c.set_context("kv #" + std::to_string(index));
  const uint64_t key_at = c.pos();
  GgufKV kv;
  kv.key = c.string("key");
  if (!gguf_detail::valid_utf8(kv.key)) c.fail("key is not valid UTF-8", key_at);
  c.set_context(kv.key);
  if (!seen.insert(kv.key).second) c.fail("duplicate key", key_at);
  const uint64_t type_at = c.pos();
  const uint32_t t = c.u32("value type");
  if (!gguf_detail::valid_value_type(t)) c.fail("unknown value type " + std::to_string(t), type_at);
  kv.type = static_cast<GgufType>(t);
  const uint64_t value_at = c.pos();
  Nesting nest;
  if (kv.type == GgufType::ARRAY) {
    kv.value = read_array(c, 0, nest, kv.array_type);
    if (nest.consistent) kv.nested_types = std::move(nest.types);
  } else {
    kv.value = read_value(c, kv.type, 0, nest);
  }
  if (kv.key == "general.alignment") {
    if (kv.type != GgufType::U32)
      c.fail("general.alignment must be u32, not " + gguf_detail::value_type_name(t), type_at);
    const uint64_t a = kv.value.get<uint64_t>();
    if (a == 0 || (a & (a - 1)) != 0)
      c.fail("general.alignment " + std::to_string(a) + " is not a non-zero power of two", value_at);
    f.alignment = a;
  }
  f.kv.push_back(std::move(kv));
}

// Where each tensor's header fields sit, for error messages after all infos are read.
struct InfoPos {
  uint64_t offset_at;
  uint64_t rel;
};

InfoPos read_tensor_info(Cursor& c, GgufFile& f, uint64_t index, std::unordered_set<std::string>& seen) {
  c.set_context("tensor #" + std::to_string(index));
  const uint64_t name_at = c.pos();
  GgufTensorInfo ti;
  ti.name = c.string("tensor name");
  if (!gguf_detail::valid_utf8(ti.name)) c.fail("tensor name is not valid UTF-8", name_at);
  c.set_context(ti.name);
  if (!seen.insert(ti.name).second) c.fail("duplicate tensor name", name_at);
  const uint64_t dims_at = c.pos();
  const uint32_t n_dims = c.u32("n_dims");
  if (n_dims == 0 || n_dims > 4) c.fail("n_dims " + std::to_string(n_dims) + " is not in 1..4", dims_at);
  uint64_t n = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne_at = c.pos();
    const uint64_t ne = c.u64("ne");
    if (__builtin_mul_overflow(n, ne, &n))
      c.fail("element count overflows 64 bits at ne[" + std::to_string(d) + "] = " + std::to_string(ne),
             ne_at);
    ti.ne.push_back(ne);
  }
  const uint64_t type_at = c.pos();
  ti.ggml_type = c.u32("tensor type");
  const auto wt = weight_type_from_ggml(ti.ggml_type);
  if (!wt) {
    std::string name = gguf_detail::ggml_type_name(ti.ggml_type);
    for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    const std::string id = std::to_string(ti.ggml_type);
    c.fail(name.empty() ? "unknown tensor type " + id : "unsupported tensor type " + id + " (" + name + ")",
           type_at);
  }
  ti.type = *wt;
  const auto& info = weight_type_info(ti.type);
  if (ti.ne[0] % info.block_elems != 0)
    c.fail("ne[0] = " + std::to_string(ti.ne[0]) + " is not a multiple of the " + std::string(info.name) +
               " block size " + std::to_string(info.block_elems),
           type_at);
  const auto nbytes = weight_type_bytes(ti.type, n);
  if (!nbytes) c.fail("byte size of " + std::to_string(n) + " elements overflows 64 bits", type_at);
  ti.nbytes = *nbytes;
  const uint64_t offset_at = c.pos();
  const uint64_t rel = c.u64("tensor data offset");
  ti.offset = rel;  // made absolute once the data section start is known
  f.tensors.push_back(std::move(ti));
  return {offset_at, rel};
}

std::string range(uint64_t a, uint64_t b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + ")"; }

void place_tensors(Cursor& c, GgufFile& f, const std::vector<InfoPos>& pos) {
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    auto& t = f.tensors[i];
    c.set_context(t.name);
    if (pos[i].rel % f.alignment != 0)
      c.fail("data offset " + std::to_string(pos[i].rel) + " is not a multiple of the alignment " +
                 std::to_string(f.alignment),
             pos[i].offset_at);
    uint64_t end = 0;
    if (__builtin_add_overflow(f.data_offset, pos[i].rel, &t.offset) ||
        __builtin_add_overflow(t.offset, t.nbytes, &end) || end > f.file_size)
      c.fail("data " + range(f.data_offset + pos[i].rel, f.data_offset + pos[i].rel + t.nbytes) +
                 " runs past the end of the file (" + std::to_string(f.file_size) + " bytes)",
             pos[i].offset_at);
  }
  std::vector<size_t> order(f.tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return f.tensors[a].offset < f.tensors[b].offset; });
  const GgufTensorInfo* prev = nullptr;
  for (size_t i : order) {
    const auto& t = f.tensors[i];
    if (t.nbytes == 0) continue;
    if (prev && t.offset < prev->offset + prev->nbytes) {
      c.set_context(t.name);
      c.fail("data " + range(t.offset, t.offset + t.nbytes) + " overlaps tensor '" + prev->name + "' " +
                 range(prev->offset, prev->offset + prev->nbytes),
             pos[i].offset_at);
    }
    prev = &t;
  }
}

GgufFile parse(gguf_detail::ByteSource& src, const std::string& name) {
  Cursor c(src, name);
  GgufFile f;
  f.path = name;
  f.file_size = src.size();
  c.set_context("");
  const std::string magic = c.raw(4, "magic");
  if (magic != "GGUF") {
    std::string shown;
    for (unsigned char ch : magic) {
      static constexpr char kHex[] = "0123456789abcdef";
      if (ch >= 0x20 && ch < 0x7f)
        shown += static_cast<char>(ch);
      else
        shown += std::string("\\x") + kHex[ch >> 4] + kHex[ch & 15];
    }
    c.fail("not a GGUF file: magic is '" + shown + "', expected 'GGUF'", 0);
  }
  f.version = c.u32("version");
  if (f.version != gguf_detail::kGgufVersion)
    c.fail("unsupported GGUF version " + std::to_string(f.version) + " (only version 3 is read)", 4);
  const uint64_t n_tensors = c.u64("n_tensors");
  const uint64_t n_kv = c.u64("n_kv");
  // Fewest bytes a tensor info (one dimension, empty name) and a key/value (u8) can take.
  constexpr uint64_t kMinInfo = 8 + 4 + 8 + 4 + 8;
  constexpr uint64_t kMinKv = 8 + 4 + 1;
  const uint64_t avail = c.header_left();
  if (n_tensors > avail / kMinInfo)
    c.fail("n_tensors " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(avail) +
               " bytes left",
           8);
  if (n_kv > (avail - n_tensors * kMinInfo) / kMinKv)
    c.fail("n_kv " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(avail) + " bytes left",
           16);
  std::unordered_set<std::string> seen;
  for (uint64_t i = 0; i < n_kv; ++i) read_kv(c, f, i, seen);
  std::vector<InfoPos> pos;
  seen.clear();
  for (uint64_t i = 0; i < n_tensors; ++i) pos.push_back(read_tensor_info(c, f, i, seen));
  f.data_offset = (c.pos() + f.alignment - 1) / f.alignment * f.alignment;
  place_tensors(c, f, pos);
  return f;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

GgufFile parse_gguf(std::span<const uint8_t> bytes, const std::string& name) {
  gguf_detail::MemorySource src(bytes);
  return parse(src, name);
}

GgufFile read_gguf(const std::filesystem::path& path) {
  const std::string name = path.string();
  Fd fd;
  fd.fd = open_input_file(path, "GGUF file");
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0)
    throw_error({name, "", -1}, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw_error({name, "", -1}, "not a regular file");
  gguf_detail::FileSource src(fd.fd, static_cast<uint64_t>(st.st_size), name);
  return parse(src, name);
}

}  // namespace strata
