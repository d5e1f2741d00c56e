// A read-only memory map of a whole file (MAP_PRIVATE, PROT_READ). Move-only; unmaps on
// destruction. Tensor bytes are read through it in place, never copied.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

namespace strata {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps the whole file; throws strata::Error naming the path and the errno text.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, static_cast<size_t>(size_)}; }
  // The range [offset, offset + n); throws strata::Error when it is not inside the file.
  std::span<const uint8_t> slice(uint64_t offset, uint64_t n) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  void reset() noexcept;

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace strata
