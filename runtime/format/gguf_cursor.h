// Bounds-checked little-endian reading of a GGUF header from either an in-memory image or
// a file read in place (pread of a growing prefix). One parser runs over both.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::gguf_detail {

// The header (metadata and tensor infos) may not extend past this many bytes: a guard
// against a corrupt length making a reader pull gigabytes into memory.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{1} << 28;

// A byte source of known size. bytes() returns [off, off + n), valid until the next call;
// the caller has checked off + n <= size().
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  uint64_t size() const { return size_; }
  virtual const uint8_t* bytes(uint64_t off, uint64_t n) = 0;

 protected:
  uint64_t size_ = 0;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const uint8_t> data) : data_(data) { size_ = data.size(); }
  const uint8_t* bytes(uint64_t off, uint64_t) override { return data_.data() + off; }

 private:
  std::span<const uint8_t> data_;
};

// Reads a prefix of an open file with pread, doubling it as the parser advances.
class FileSource final : public ByteSource {
 public:
  FileSource(int fd, uint64_t size, std::string name);
  const uint8_t* bytes(uint64_t off, uint64_t n) override;

 private:
  int fd_;
  std::string name_;
  std::vector<uint8_t> prefix_;
};

// Sequential reader. Every failure throws strata::Error naming the file, the current key or
// tensor (set_context) and a byte offset.
class Cursor {
 public:
  Cursor(ByteSource& src, std::string file) : src_(src), file_(std::move(file)) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return src_.size() - pos_; }
  // Bytes the header may still take: to the end of the source or the header limit.
  uint64_t header_left() const { return std::min(left(), kMaxHeaderBytes - std::min(pos_, kMaxHeaderBytes)); }
  const std::string& file() const { return file_; }
  void set_context(std::string key_or_tensor) { context_ = std::move(key_or_tensor); }

  uint8_t u8(std::string_view what) { return *take(1, what); }
  uint32_t u32(std::string_view what) { return static_cast<uint32_t>(le(take(4, what), 4)); }
  uint64_t u64(std::string_view what) { return le(take(8, what), 8); }
  uint16_t u16(std::string_view what) { return static_cast<uint16_t>(le(take(2, what), 2)); }
  // Raw bytes, copied.
  std::string raw(uint64_t n, std::string_view what);
  // u64 length + bytes.
  std::string string(std::string_view what);

  [[noreturn]] void fail(const std::string& what, uint64_t at) const;

 private:
  const uint8_t* take(uint64_t n, std::string_view what);
  static uint64_t le(const uint8_t* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }

  ByteSource& src_;
  std::string file_;
  std::string context_;
  uint64_t pos_ = 0;
};

// Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF.
bool valid_utf8(std::string_view s);

}  // namespace strata::gguf_detail
