// Writes safetensors files (single or sharded with an index) for generated models and tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cpu-kernels/weight_type.h"

namespace strata {

struct SafetensorsTensorData {
  std::string name;
  WeightType type;
  std::vector<int64_t> shape;  // outermost first
  std::vector<uint8_t> bytes;  // exactly product(shape) elements of type
};

class SafetensorsWriter {
 public:
  // Throws strata::Error naming the tensor when the type has no safetensors dtype, a dimension
  // is negative, the byte count does not match the shape, or the name was already added.
  void add_tensor(std::string name, WeightType type, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void add_tensor(SafetensorsTensorData t);
  void add_metadata(std::string key, std::string value);
  // Header (padded with spaces to a multiple of 8) then the tensors in insertion order. Writes a
  // temporary file next to path and renames it; I/O errors name the path.
  void write(const std::filesystem::path& path) const;
  // Size of the file write() produces.
  uint64_t total_bytes() const;

 private:
  std::string header() const;

  std::vector<SafetensorsTensorData> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

// Writes tensors (in order) into n_shards files model-0000k-of-0000n.safetensors plus
// model.safetensors.index.json in dir (created if needed); n_shards == 1 writes a single
// model.safetensors and no index. Tensors are split into consecutive runs of near-equal bytes.
void write_sharded_safetensors(const std::filesystem::path& dir, std::vector<SafetensorsTensorData> tensors,
                               int n_shards,
                               const std::vector<std::pair<std::string, std::string>>& metadata = {});

// "model-00002-of-00003.safetensors" for (1, 3) (k is 0-based).
std::string safetensors_shard_name(int k, int n_shards);

// Writes bytes to path through a temporary file in the same folder and a rename.
void write_file_atomic(const std::filesystem::path& path,
                       const std::vector<std::pair<const uint8_t*, size_t>>& pieces);

}  // namespace strata
