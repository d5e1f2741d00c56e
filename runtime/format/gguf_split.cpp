#include "runtime/format/gguf_split.h"

#include <cstdio>
#include <optional>
#include <string>
#include <unordered_map>

#include "runtime/common/error.h"

namespace strata {
namespace {

std::string part_name(const std::string& prefix, int no, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", no, count);
  return prefix + buf;
}

// Value of an integer key, or nullopt when absent; throws when present but not an integer.
std::optional<uint64_t> int_key(const GgufFile& f, const char* key) {
  const GgufKV* kv = f.find(key);
  if (!kv) return std::nullopt;
  const auto& v = kv->value;
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
    throw_error({f.path, key, -1}, "split metadata is not a non-negative integer");
  return kv->value.get<uint64_t>();
}

}  // namespace

std::vector<std::filesystem::path> gguf_split_paths(const std::filesystem::path& any_part) {
  // <prefix>-NNNNN-of-MMMMM.gguf: the 20 characters after the prefix have a fixed form.
  const std::string file = any_part.filename().string();
  constexpr size_t kTail = 20;  // "-00001-of-00003.gguf"
  auto digits = [&](size_t at) {
    for (size_t i = at; i < at + 5; ++i)
      if (file[i] < '0' || file[i] > '9') return false;
    return true;
  };
  if (file.size() <= kTail) return {any_part};
  const size_t b = file.size() - kTail;
  if (file[b] != '-' || !digits(b + 1) || file.compare(b + 6, 4, "-of-") != 0 || !digits(b + 10) ||
      file.compare(b + 15, 5, ".gguf") != 0)
    return {any_part};
  const std::string prefix = file.substr(0, b);
  const int no = std::stoi(file.substr(b + 1, 5));
  const int count = std::stoi(file.substr(b + 10, 5));
  if (count < 1 || no < 1 || no > count)
    throw_error({any_part.string(), "", -1}, "split part number " + std::to_string(no) + " of " +
                                                 std::to_string(count) + " is impossible");
  std::vector<std::filesystem::path> parts;
  parts.reserve(static_cast<size_t>(count));
  for (int i = 1; i <= count; ++i) {
    auto p = any_part.parent_path() / part_name(prefix, i, count);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(p, ec))
      throw_error({p.string(), "", -1}, "split part " + std::to_string(i) + " of " + std::to_string(count) +
                                            " is missing (named by " + any_part.string() + ")");
    parts.push_back(std::move(p));
  }
  return parts;
}

void check_gguf_split(const std::vector<GgufFile>& parts) {
  uint64_t total = 0;
  for (const auto& f : parts) total += f.tensors.size();
  std::unordered_map<std::string, const std::string*> owner;
  for (size_t i = 0; i < parts.size(); ++i) {
    const GgufFile& f = parts[i];
    if (auto count = int_key(f, "split.count"); count && *count != parts.size())
      throw_error({f.path, "split.count", -1},
                  "says " + std::to_string(*count) + " parts, but there are " + std::to_string(parts.size()));
    if (auto no = int_key(f, "split.no"); no && *no != i)
      throw_error({f.path, "split.no", -1}, "says part index " + std::to_string(*no) +
                                                ", but the file is part index " + std::to_string(i));
    if (auto n = int_key(f, "split.tensors.count"); n && *n != total)
      throw_error({f.path, "split.tensors.count", -1},
                  "says " + std::to_string(*n) + " tensors, but the parts hold " + std::to_string(total));
    for (const auto& t : f.tensors) {
      auto [it, fresh] = owner.emplace(t.name, &f.path);
      if (!fresh) throw_error({f.path, t.name, -1}, "tensor also appears in " + *it->second);
    }
  }
}

}  // namespace strata
