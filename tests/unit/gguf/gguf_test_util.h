// Builders and byte patchers for the GGUF tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/format/gguf.h"
#include "tests/support/test_support.h"

namespace strata::test {

inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

// Writes w to dir/name and returns the file's bytes.
inline std::vector<uint8_t> written_image(const GgufWriter& w, const ScratchDir& dir,
                                          const std::string& name = "img.gguf") {
  w.write(dir / name);
  return read_bytes(dir / name);
}

// Position of the first occurrence of text in bytes (fails the test when absent).
inline size_t find_text(const std::vector<uint8_t>& bytes, std::string_view text) {
  const std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const size_t at = all.find(text);
  EXPECT_NE(at, std::string_view::npos) << "'" << text << "' not in image";
  return at == std::string_view::npos ? 0 : at;
}

inline void put_le(std::vector<uint8_t>& bytes, size_t at, uint64_t v, int n) {
  ASSERT_LE(at + n, bytes.size());
  for (int i = 0; i < n; ++i) bytes[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t get_le(const std::vector<uint8_t>& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | bytes.at(at + i);
  return v;
}

// Byte positions of one key/value: key length, key text, value type, value.
struct KvAt {
  size_t len_at, key_at, type_at, value_at;
};
inline KvAt kv_at(const std::vector<uint8_t>& bytes, const std::string& key) {
  const size_t key_at = find_text(bytes, key);
  return {key_at - 8, key_at, key_at + key.size(), key_at + key.size() + 4};
}

// Byte positions of one tensor info's fields.
struct InfoAt {
  size_t len_at, name_at, n_dims_at, ne_at, type_at, offset_at;
};
inline InfoAt info_at(const std::vector<uint8_t>& bytes, const std::string& name) {
  const size_t name_at = find_text(bytes, name);
  const size_t dims_at = name_at + name.size();
  const auto n_dims = static_cast<size_t>(get_le(bytes, dims_at, 4));
  const size_t type_at = dims_at + 4 + 8 * n_dims;
  return {name_at - 8, name_at, dims_at, dims_at + 4, type_at, type_at + 4};
}

inline std::string at(size_t offset) { return "offset " + std::to_string(offset); }

// Raw little-endian image builder for files the writer refuses to produce.
struct RawImage {
  std::vector<uint8_t> b;
  RawImage& le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  RawImage& str(std::string_view s) {
    le(s.size(), 8);
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  RawImage& header(uint64_t n_tensors, uint64_t n_kv) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    le(3, 4);
    le(n_tensors, 8);
    return le(n_kv, 8);
  }
};

}  // namespace strata::test
