#include "runtime/format/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/format/safetensors.h"

namespace strata {

void write_file_atomic(const std::filesystem::path& path,
                       const std::vector<std::pair<const uint8_t*, size_t>>& pieces) {
  std::vector<std::pair<const void*, size_t>> p;
  p.reserve(pieces.size());
  for (const auto& [data, n] : pieces) p.emplace_back(data, n);
  write_output_file(path, p, "output");
}

void SafetensorsWriter::add_tensor(std::string name, WeightType type, std::vector<int64_t> shape,
                                   std::vector<uint8_t> bytes) {
  add_tensor({std::move(name), type, std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::add_tensor(SafetensorsTensorData t) {
  if (!safetensors_dtype(t.type))
    throw_error({"", t.name, -1},
                "type " + std::string(weight_type_name(t.type)) + " has no safetensors dtype");
  if (t.name == "__metadata__" || t.name.empty())
    throw_error({"", t.name, -1}, "reserved or empty tensor name");
  uint64_t elems = 1;
  for (int64_t d : t.shape) {
    if (d < 0) throw_error({"", t.name, -1}, "negative dimension in shape");
    if (__builtin_mul_overflow(elems, static_cast<uint64_t>(d), &elems))
      throw_error({"", t.name, -1}, "shape overflows");
  }
  const auto expect = weight_type_bytes(t.type, elems);
  if (!expect || *expect != t.bytes.size())
    throw_error({"", t.name, -1},
                "got " + std::to_string(t.bytes.size()) + " bytes, shape and type need " +
                    (expect ? std::to_string(*expect) : std::string("an overflowing count")));
  for (const auto& o : tensors_)
    if (o.name == t.name) throw_error({"", t.name, -1}, "tensor added twice");
  tensors_.push_back(std::move(t));
}

void SafetensorsWriter::add_metadata(std::string key, std::string value) {
  metadata_.emplace_back(std::move(key), std::move(value));
}

std::string SafetensorsWriter::header() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) m[k] = v;
    j["__metadata__"] = std::move(m);
  }
  uint64_t at = 0;
  for (const auto& t : tensors_) {
    j[t.name] = {{"dtype", std::string(*safetensors_dtype(t.type))},
                 {"shape", t.shape},
                 {"data_offsets", {at, at + t.bytes.size()}}};
    at += t.bytes.size();
  }
  std::string text = j.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

uint64_t SafetensorsWriter::total_bytes() const {
  uint64_t n = 8 + header().size();
  for (const auto& t : tensors_) n += t.bytes.size();
  return n;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  const std::string text = header();
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  std::vector<std::pair<const uint8_t*, size_t>> pieces;
  pieces.emplace_back(len, 8);
  pieces.emplace_back(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  for (const auto& t : tensors_) pieces.emplace_back(t.bytes.data(), t.bytes.size());
  write_file_atomic(path, pieces);
}

std::string safetensors_shard_name(int k, int n_shards) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", k + 1, n_shards);
  return buf;
}

void write_sharded_safetensors(const std::filesystem::path& dir, std::vector<SafetensorsTensorData> tensors,
                               int n_shards,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  if (n_shards < 1 || n_shards > 99999)
    throw_error({dir.string(), "", -1},
                "shard count " + std::to_string(n_shards) + " out of range [1, 99999]");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_error({dir.string(), "", -1}, "cannot create folder: " + ec.message());

  uint64_t total = 0;
  for (const auto& t : tensors) total += t.bytes.size();
  std::vector<SafetensorsWriter> shards(static_cast<size_t>(n_shards));
  for (auto& w : shards)
    for (const auto& [k, v] : metadata) w.add_metadata(k, v);
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  // Tensor i goes to the shard its starting byte falls in, never skipping a shard, so that with at
  // least n_shards tensors every shard gets one.
  uint64_t before = 0;
  size_t prev = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    size_t k = total == 0 ? 0 : static_cast<size_t>((static_cast<__uint128_t>(before) * n_shards) / total);
    const size_t remaining_tensors = tensors.size() - i;
    const size_t min_k = static_cast<size_t>(n_shards) > remaining_tensors ? n_shards - remaining_tensors : 0;
    k = std::max(k, min_k);
    k = std::min({k, i == 0 ? size_t{0} : prev + 1, static_cast<size_t>(n_shards - 1)});
    prev = k;
    if (weight_map.contains(tensors[i].name))
      throw_error({dir.string(), tensors[i].name, -1}, "tensor added twice");
    before += tensors[i].bytes.size();
    weight_map[tensors[i].name] = safetensors_shard_name(static_cast<int>(k), n_shards);
    shards[k].add_tensor(std::move(tensors[i]));
  }
  if (n_shards == 1) {
    shards[0].write(dir / "model.safetensors");
    return;
  }
  for (int k = 0; k < n_shards; ++k) shards[k].write(dir / safetensors_shard_name(k, n_shards));
  const nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string text = index.dump(2) + "\n";
  write_file_atomic(dir / "model.safetensors.index.json",
                    {{reinterpret_cast<const uint8_t*>(text.data()), text.size()}});
}

}  // namespace strata
