// Helpers shared by the unit tests: scratch directories, file I/O, error-message matching.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::test {

// A fresh empty directory under the build tree, removed when the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::vector<uint8_t> read_bytes(const std::filesystem::path& p);
void write_bytes(const std::filesystem::path& p, const std::vector<uint8_t>& bytes);
void write_text(const std::filesystem::path& p, const std::string& text);

// Runs fn, expects it to throw a std::exception whose what() contains every needle.
#define STRATA_EXPECT_ERROR(stmt, ...)                                                    \
  do {                                                                                   \
    try {                                                                                \
      stmt;                                                                              \
      ADD_FAILURE() << "expected an error from: " #stmt;                                 \
    } catch (const std::exception& e_) {                                                 \
      for (const std::string& needle_ : std::vector<std::string>{__VA_ARGS__})           \
        EXPECT_NE(std::string(e_.what()).find(needle_), std::string::npos)               \
            << "error message '" << e_.what() << "' lacks '" << needle_ << "'";          \
    }                                                                                    \
  } while (0)

// NMSE = sum((a-b)^2) / sum(a^2) (0 when both are all zero).
double nmse(const std::vector<float>& ref, const std::vector<float>& got);
// max |a - b| / max |b|.
double max_rel(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace strata::test
