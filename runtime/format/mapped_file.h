// A read-only memory map of a whole file (MAP_PRIVATE, PROT_READ). Move-only; unmaps on
// destruction. Tensor bytes are read through it in place, never copied.
#pragma once

#include <cstddef>
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

// When a mapped file shrinks or is rewritten under a running process, reading a page past its
// new end raises SIGBUS. The maps are registered so that a SIGBUS handler (the CLI installs one)
// can name the file and the offset instead of dying without a word. Async-signal-safe: writes a
// one-line message for a fault at addr into buf (NUL-terminated, at most len bytes) and returns
// true when addr lies in a registered map; false otherwise.
bool describe_mapped_fault(const void* addr, char* buf, size_t len) noexcept;

}  // namespace strata
