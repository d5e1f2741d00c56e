// safetensors: a u64 LE header length N, N bytes of JSON describing each tensor (dtype, shape,
// data_offsets relative to the end of the header), then the data. Read in place: only the
// header is read; tensor data stays in the file. Sharded checkpoints are described by a
// `model.safetensors.index.json` whose weight_map names the shard holding each tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpu-kernels/weight_type.h"

namespace strata {

// Largest header strata accepts (the format's own readers use the same bound).
inline constexpr uint64_t kSafetensorsMaxHeader = 100ull * 1000 * 1000;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written in the header, e.g. "BF16"
  WeightType type;
  std::vector<int64_t> shape;  // outermost first
  uint64_t offset = 0;         // absolute byte offset in the file
  uint64_t nbytes = 0;
};

struct SafetensorsFile {
  std::string path;
  uint64_t file_size = 0;
  uint64_t header_size = 0;                                   // N
  uint64_t data_offset = 0;                                   // 8 + N
  std::vector<std::pair<std::string, std::string>> metadata;  // "__metadata__", sorted by key
  std::vector<SafetensorsTensor> tensors;                     // sorted by offset

  const SafetensorsTensor* find(std::string_view name) const;
};

// dtype string <-> WeightType. nullopt for dtypes strata does not read (F64, F8_E5M2, ...)
// and for types safetensors cannot express (MXFP4, GGUF block types).
std::optional<WeightType> weight_type_from_safetensors(std::string_view dtype);
std::optional<std::string_view> safetensors_dtype(WeightType t);

// Reads the 8 + N header bytes of a file (pread; the data is not read) and checks it.
// Throws strata::Error naming the file, the tensor and the byte offset on any inconsistency.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

// Same checks over bytes that hold at least the 8 + N header bytes of a file of file_size
// bytes (the whole file, or only its header). `name` is used in error messages.
SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, uint64_t file_size,
                                  const std::string& name);

struct SafetensorsShardedModel {
  std::string index_path;
  nlohmann::json metadata;                                      // the index's "metadata" (or null)
  std::vector<std::pair<std::string, std::string>> weight_map;  // tensor -> shard file name
  std::vector<SafetensorsFile> shards;  // in order of first reference in the (sorted) weight_map
};

// Reads model.safetensors.index.json and every shard it references (in the same folder).
// Throws strata::Error naming the index and the shard when a shard is missing, a tensor of the
// weight_map is absent from its shard, or a shard holds a tensor the weight_map does not list.
SafetensorsShardedModel read_safetensors_index(const std::filesystem::path& index_json);

}  // namespace strata
