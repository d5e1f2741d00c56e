#include "runtime/format/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/format/strict_json.h"

namespace strata {
namespace {

using Json = nlohmann::json;

struct DtypeRow {
  std::string_view dtype;
  WeightType type;
};
constexpr std::array<DtypeRow, 11> kDtypes = {{
    {"F32", WeightType::F32},
    {"F16", WeightType::F16},
    {"BF16", WeightType::BF16},
    {"F8_E4M3", WeightType::F8_E4M3},
    {"F8_E8M0", WeightType::F8_E8M0},
    {"I8", WeightType::I8},
    {"U8", WeightType::U8},
    {"I16", WeightType::I16},
    {"I32", WeightType::I32},
    {"I64", WeightType::I64},
    {"BOOL", WeightType::BOOL},
}};

uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Absolute offset of `"name"` used as a key in the header text, or the header start when the
// name is not found verbatim (escaped names).
int64_t key_offset(std::string_view header, const std::string& name) {
  const std::string quoted = "\"" + name + "\"";
  size_t at = 0;
  while ((at = header.find(quoted, at)) != std::string_view::npos) {
    size_t i = at + quoted.size();
    while (i < header.size() &&
           (header[i] == ' ' || header[i] == '\t' || header[i] == '\n' || header[i] == '\r'))
      ++i;
    if (i < header.size() && header[i] == ':') return static_cast<int64_t>(8 + at);
    at += 1;
  }
  return 8;
}

std::optional<uint64_t> as_u64(const Json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= 0) return static_cast<uint64_t>(i);
  }
  return std::nullopt;
}

// Error offset placeholder: the position of the tensor's key in the header.
constexpr int64_t kAtKey = -2;

class HeaderParser {
 public:
  HeaderParser(const std::string& file, std::string_view header, uint64_t file_size)
      : file_(file), header_(header), file_size_(file_size), data_offset_(8 + header.size()) {}

  SafetensorsTensor tensor(const std::string& name, const Json& v) const {
    const int64_t at = kAtKey;  // resolved only when an error is thrown
    const auto fail = [&](const std::string& what, int64_t offset) { fail_at(name, what, offset); };
    if (!v.is_object()) fail("tensor entry is not a JSON object", at);
    SafetensorsTensor t;
    t.name = name;
    const auto dtype = v.find("dtype");
    if (dtype == v.end() || !dtype->is_string()) fail("missing or non-string field 'dtype'", at);
    t.dtype = dtype->get<std::string>();
    const auto type = weight_type_from_safetensors(t.dtype);
    if (!type) fail("unknown dtype '" + t.dtype + "'", at);
    t.type = *type;

    const auto shape = v.find("shape");
    if (shape == v.end() || !shape->is_array()) fail("missing or non-array field 'shape'", at);
    uint64_t elems = 1;
    for (const Json& d : *shape) {
      if (!d.is_number_integer()) fail("shape holds a value that is not an integer", at);
      if (!d.is_number_unsigned() && d.get<int64_t>() < 0)
        fail("negative dimension " + std::to_string(d.get<int64_t>()) + " in shape", at);
      const auto dim = as_u64(d);
      if (!dim || *dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(elems, *dim, &elems) ||
          elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("shape element count overflows", at);
      t.shape.push_back(static_cast<int64_t>(*dim));
    }

    const auto offs = v.find("data_offsets");
    if (offs == v.end() || !offs->is_array() || offs->size() != 2)
      fail("missing field 'data_offsets' or it is not an array of two integers", at);
    const auto begin = as_u64((*offs)[0]);
    const auto end = as_u64((*offs)[1]);
    if (!begin || !end) fail("data_offsets must be non-negative integers", at);
    if (*end < *begin)
      fail("data_offsets end " + std::to_string(*end) + " is before begin " + std::to_string(*begin), at);
    const uint64_t data_bytes = file_size_ - data_offset_;
    if (*end > data_bytes)
      fail("data [" + std::to_string(*begin) + ", " + std::to_string(*end) +
               ") runs past the end of the file (" + std::to_string(data_bytes) + " data bytes)",
           static_cast<int64_t>(data_offset_ + std::min(*begin, data_bytes)));
    t.offset = data_offset_ + *begin;
    t.nbytes = *end - *begin;
    const auto expect = weight_type_bytes(t.type, elems);
    if (!expect || *expect != t.nbytes)
      fail("byte length " + std::to_string(t.nbytes) + " does not match shape x dtype size (" +
               (expect ? std::to_string(*expect) : std::string("overflow")) + " bytes)",
           static_cast<int64_t>(t.offset));
    return t;
  }

  std::vector<std::pair<std::string, std::string>> metadata(const Json& v) const {
    const int64_t at = key_offset(header_, "__metadata__");
    if (!v.is_object()) throw_error({file_, "__metadata__", at}, "__metadata__ is not a JSON object");
    std::vector<std::pair<std::string, std::string>> out;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it.value().is_string())
        throw_error({file_, "__metadata__." + it.key(), at}, "metadata value is not a string");
      out.emplace_back(it.key(), it.value().get<std::string>());
    }
    return out;
  }

 private:
  [[noreturn]] void fail_at(const std::string& name, const std::string& what, int64_t offset) const {
    throw_error({file_, name, offset == kAtKey ? key_offset(header_, name) : offset}, what);
  }

  const std::string& file_;
  std::string_view header_;
  uint64_t file_size_;
  uint64_t data_offset_;
};

void check_overlaps(const std::string& file, const std::vector<SafetensorsTensor>& sorted) {
  const SafetensorsTensor* prev = nullptr;
  for (const auto& t : sorted) {
    if (t.nbytes == 0) continue;
    if (prev != nullptr && t.offset < prev->offset + prev->nbytes)
      throw_error({file, t.name, static_cast<int64_t>(t.offset)},
                  "byte range [" + std::to_string(t.offset) + ", " + std::to_string(t.offset + t.nbytes) +
                      ") overlaps tensor '" + prev->name + "' [" + std::to_string(prev->offset) + ", " +
                      std::to_string(prev->offset + prev->nbytes) + ")");
    prev = &t;
  }
}

// Reads exactly n bytes at offset; errors name the path.
void pread_all(int fd, const std::string& path, uint8_t* dst, uint64_t n, uint64_t offset) {
  uint64_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd, dst + done, static_cast<size_t>(n - done), static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      throw_error({path, "", static_cast<int64_t>(offset + done)},
                  std::string("read failed: ") + std::strerror(errno));
    if (r == 0)
      throw_error({path, "", static_cast<int64_t>(offset + done)},
                  "unexpected end of file while reading the header");
    done += static_cast<uint64_t>(r);
  }
}

}  // namespace

std::optional<WeightType> weight_type_from_safetensors(std::string_view dtype) {
  for (const auto& row : kDtypes)
    if (row.dtype == dtype) return row.type;
  return std::nullopt;
}

std::optional<std::string_view> safetensors_dtype(WeightType t) {
  for (const auto& row : kDtypes)
    if (row.type == t) return row.dtype;
  return std::nullopt;
}

const SafetensorsTensor* SafetensorsFile::find(std::string_view name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, uint64_t file_size,
                                  const std::string& name) {
  if (file_size < 8)
    throw_error({name, "", 0},
                "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  if (bytes.size() < 8) throw_error({name, "", 0}, "truncated: fewer than 8 bytes available");
  const uint64_t n = le64(bytes.data());
  if (n > kSafetensorsMaxHeader)
    throw_error({name, "", 0}, "header length " + std::to_string(n) + " exceeds the limit of " +
                                   std::to_string(kSafetensorsMaxHeader) + " bytes");
  if (n > file_size - 8)
    throw_error({name, "", 0}, "header length " + std::to_string(n) + " runs past the end of the file (" +
                                   std::to_string(file_size) + " bytes)");
  if (bytes.size() - 8 < n)
    throw_error({name, "", static_cast<int64_t>(bytes.size())},
                "truncated: header needs " + std::to_string(8 + n) + " bytes, only " +
                    std::to_string(bytes.size()) + " available");

  SafetensorsFile out;
  out.path = name;
  out.file_size = file_size;
  out.header_size = n;
  out.data_offset = 8 + n;
  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), static_cast<size_t>(n));
  const Json j = parse_json_strict(header, name, 8, 8);
  if (!j.is_object()) throw_error({name, "", 8}, "header is not a JSON object");

  const HeaderParser parser(name, header, file_size);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__")
      out.metadata = parser.metadata(it.value());
    else
      out.tensors.push_back(parser.tensor(it.key(), it.value()));
  }
  std::stable_sort(
      out.tensors.begin(), out.tensors.end(),
      [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.offset < b.offset; });
  check_overlaps(name, out.tensors);
  return out;
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = open_input_file(path, "safetensors file");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_error({name, "", -1}, std::string("cannot stat: ") + std::strerror(errno));
  const auto size = static_cast<uint64_t>(st.st_size);
  std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(size, 8)));
  pread_all(fd, name, head.data(), head.size(), 0);
  if (size < 8) return parse_safetensors(head, size, name);  // throws
  const uint64_t n = le64(head.data());
  if (n > kSafetensorsMaxHeader || n > size - 8) return parse_safetensors(head, size, name);  // throws
  head.resize(static_cast<size_t>(8 + n));
  pread_all(fd, name, head.data() + 8, n, 8);
  return parse_safetensors(head, size, name);
}

SafetensorsShardedModel read_safetensors_index(const std::filesystem::path& index_json) {
  const std::string iname = index_json.string();
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(index_json, ec);
  if (ec) throw_error({iname, "", -1}, "cannot read index: " + ec.message());
  if (size > kSafetensorsMaxHeader)
    throw_error({iname, "", 0}, "index larger than " + std::to_string(kSafetensorsMaxHeader) + " bytes");
  std::string text(static_cast<size_t>(size), '\0');
  {
    const int fd = open_input_file(index_json, "safetensors index");
    try {
      pread_all(fd, iname, reinterpret_cast<uint8_t*>(text.data()), size, 0);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
  }
  const Json j = parse_json_strict(text, iname, 0, 16);
  if (!j.is_object()) throw_error({iname, "", 0}, "index is not a JSON object");
  const auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object())
    throw_error({iname, "weight_map", -1}, "missing or non-object 'weight_map'");

  SafetensorsShardedModel out;
  out.index_path = iname;
  if (const auto meta = j.find("metadata"); meta != j.end()) out.metadata = *meta;
  std::unordered_map<std::string, size_t> shard_of_name;
  std::vector<std::string> shard_names;
  std::unordered_map<std::string, size_t> listed;  // tensor -> shard index
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) throw_error({iname, it.key(), -1}, "weight_map value is not a string");
    const std::string shard = it.value().get<std::string>();
    const std::filesystem::path rel(shard);
    bool bad = shard.empty() || rel.is_absolute();
    for (const auto& part : rel) bad = bad || part == "..";
    if (bad)
      throw_error({iname, it.key(), -1},
                  "shard name '" + shard + "' is not a file name inside the model folder");
    auto [pos, added] = shard_of_name.emplace(shard, shard_names.size());
    if (added) shard_names.push_back(shard);
    out.weight_map.emplace_back(it.key(), shard);
    listed.emplace(it.key(), pos->second);
  }

  const std::filesystem::path dir = index_json.parent_path();
  for (size_t s = 0; s < shard_names.size(); ++s) {
    const std::filesystem::path p = dir / shard_names[s];
    if (!std::filesystem::exists(p, ec))
      throw_error({iname, "", -1}, "shard '" + shard_names[s] +
                                       "' referenced by the weight_map is missing (" + p.string() + ")");
    out.shards.push_back(read_safetensors(p));
  }
  std::vector<size_t> listed_per_shard(out.shards.size(), 0);
  for (const auto& [tensor, s] : listed) ++listed_per_shard[s];
  for (size_t s = 0; s < out.shards.size(); ++s) {
    for (const auto& t : out.shards[s].tensors) {
      const auto it = listed.find(t.name);
      if (it == listed.end())
        throw_error({out.shards[s].path, t.name, static_cast<int64_t>(t.offset)},
                    "tensor is in this shard but not in the weight_map of " + iname);
      if (it->second != s)
        throw_error({out.shards[s].path, t.name, static_cast<int64_t>(t.offset)},
                    "tensor is in this shard but the weight_map of " + iname + " places it in '" +
                        shard_names[it->second] + "'");
    }
  }
  // Every tensor of a shard is listed for it, so a count mismatch means a listed one is absent.
  for (size_t s = 0; s < out.shards.size(); ++s) {
    if (out.shards[s].tensors.size() == listed_per_shard[s]) continue;
    for (const auto& [tensor, shard] : out.weight_map)
      if (shard == shard_names[s] && out.shards[s].find(tensor) == nullptr)
        throw_error({out.shards[s].path, tensor, -1},
                    "tensor listed in the weight_map of " + iname + " is missing from this shard");
  }
  return out;
}

}  // namespace strata
