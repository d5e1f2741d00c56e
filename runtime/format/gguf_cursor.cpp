#include "runtime/format/gguf_cursor.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/common/error.h"

namespace strata::gguf_detail {

FileSource::FileSource(int fd, uint64_t size, std::string name) : fd_(fd), name_(std::move(name)) {
  size_ = size;
}

const uint8_t* FileSource::bytes(uint64_t off, uint64_t n) {
  const uint64_t need = off + n;
  if (need > prefix_.size()) {
    uint64_t want = std::max<uint64_t>({need, 2 * static_cast<uint64_t>(prefix_.size()), uint64_t{1} << 16});
    want = std::min({want, size_, std::max(need, kMaxHeaderBytes)});
    size_t have = prefix_.size();
    prefix_.resize(want);
    while (have < want) {
      const ssize_t r = ::pread(fd_, prefix_.data() + have, want - have, static_cast<off_t>(have));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        const std::string why = r < 0 ? std::strerror(errno) : "unexpected end of file";
        prefix_.resize(have);
        throw_error({name_, "", static_cast<int64_t>(have)}, "read failed: " + why);
      }
      have += static_cast<size_t>(r);
    }
  }
  return prefix_.data() + off;
}

const uint8_t* Cursor::take(uint64_t n, std::string_view what) {
  if (n > left())
    fail("truncated: " + std::string(what) + " needs " + std::to_string(n) + " bytes, " +
             std::to_string(left()) + " left",
         pos_);
  if (pos_ + n > kMaxHeaderBytes)
    fail(std::string(what) + " ends past " + std::to_string(kMaxHeaderBytes) +
             " bytes: metadata and tensor infos larger than the reader accepts",
         pos_);
  const uint8_t* p = src_.bytes(pos_, n);
  pos_ += n;
  return p;
}

std::string Cursor::raw(uint64_t n, std::string_view what) {
  const uint8_t* p = take(n, what);
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::string Cursor::string(std::string_view what) {
  const uint64_t at = pos_;
  const uint64_t len = u64(std::string(what) + " length");
  if (len > left())
    fail(std::string(what) + " length " + std::to_string(len) + " runs past the end (" +
             std::to_string(left()) + " bytes left)",
         at);
  return raw(len, what);
}

void Cursor::fail(const std::string& what, uint64_t at) const {
  throw_error({file_, context_, static_cast<int64_t>(at)}, what);
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07, min = 0x10000;
    else
      return false;
    if (n - i < static_cast<size_t>(len)) return false;
    for (int k = 1; k < len; ++k) {
      const auto d = static_cast<uint8_t>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace strata::gguf_detail
