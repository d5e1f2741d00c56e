// Builders for hand-made safetensors images used by the format tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/test_support.h"

namespace strata::test {

inline std::vector<uint8_t> fill_pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2246822519u + 7;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 23);
  }
  return v;
}

// 8-byte length (header.size() unless n_override is given), header text, data_bytes of pattern.
inline std::vector<uint8_t> st_image(std::string_view header, size_t data_bytes,
                                     uint64_t n_override = UINT64_MAX) {
  const uint64_t n = n_override == UINT64_MAX ? header.size() : n_override;
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  const auto data = fill_pattern(data_bytes, 3);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline std::string offset_text(uint64_t at) { return "offset " + std::to_string(at); }

}  // namespace strata::test
