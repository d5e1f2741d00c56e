// NumPy .npy (format 1.0) files of little-endian float32 arrays, C order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace strata {

// Writes data (product(shape) floats) to path; throws strata::Error naming the path on I/O errors.
void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
// Reads a '<f4' C-order array; throws strata::Error naming the path and what is wrong.
NpyArray read_npy_f32(const std::filesystem::path& path);

}  // namespace strata
