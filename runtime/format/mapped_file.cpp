#include "runtime/format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <cstring>
#include <string>
#include <utility>

#include "runtime/common/error.h"
#include "runtime/common/files.h"

namespace strata {
namespace {

// The maps a SIGBUS may land in: fixed slots, written under a mutex, read by the signal handler
// without locks (a slot's base is published last and cleared first).
constexpr int kSlots = 4096;
struct Slot {
  std::atomic<uintptr_t> base{0};
  size_t size = 0;
  char path[480] = {};
};
Slot g_slots[kSlots];
std::mutex g_slots_mu;

void register_map(const void* base, size_t size, const std::string& path) {
  const std::lock_guard<std::mutex> lock(g_slots_mu);
  for (Slot& s : g_slots)
    if (s.base.load(std::memory_order_relaxed) == 0) {
      s.size = size;
      const size_t n = std::min(path.size(), sizeof s.path - 1);
      std::memcpy(s.path, path.data(), n);
      s.path[n] = '\0';
      s.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
      return;
    }
  // More maps than slots: a fault in this one is reported without its name.
}

void unregister_map(const void* base) {
  const std::lock_guard<std::mutex> lock(g_slots_mu);
  for (Slot& s : g_slots)
    if (s.base.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(base)) {
      s.base.store(0, std::memory_order_release);
      return;
    }
}

// Appends src to buf[*at..len), keeping room for the NUL.
void append(char* buf, size_t len, size_t* at, const char* src) {
  while (*src && *at + 1 < len) buf[(*at)++] = *src++;
}

void append_u64(char* buf, size_t len, size_t* at, uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n > 0 && *at + 1 < len) buf[(*at)++] = digits[--n];
}

[[noreturn]] void throw_errno(const std::filesystem::path& path, const std::string& what, int err) {
  throw_error({path.string(), "", -1}, what + ": " + std::strerror(err));
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
  const int fd = open_input_file(path, "weight file");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno(path, "cannot stat", err);
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(size_), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw_errno(path, "cannot map " + std::to_string(size_) + " bytes", err);
    }
    data_ = static_cast<const uint8_t*>(p);
    register_map(data_, static_cast<size_t>(size_), path.string());
  }
  ::close(fd);
}

MappedFile::~MappedFile() { reset(); }

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MappedFile::reset() noexcept {
  if (data_ != nullptr) {
    unregister_map(data_);
    ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
  }
  data_ = nullptr;
  size_ = 0;
}

std::span<const uint8_t> MappedFile::slice(uint64_t offset, uint64_t n) const {
  if (offset > size_ || n > size_ - offset)
    throw_error({path_.string(), "", static_cast<int64_t>(offset)},
                "range of " + std::to_string(n) + " bytes runs past the end of the mapped file (" +
                    std::to_string(size_) + " bytes)");
  return {data_ + offset, static_cast<size_t>(n)};
}

bool describe_mapped_fault(const void* addr, char* buf, size_t len) noexcept {
  if (len == 0) return false;
  const auto a = reinterpret_cast<uintptr_t>(addr);
  for (const Slot& s : g_slots) {
    const uintptr_t base = s.base.load(std::memory_order_acquire);
    if (base == 0 || a < base || a - base >= s.size) continue;
    size_t at = 0;
    append(buf, len, &at, "strata: error: ");
    append(buf, len, &at, s.path);
    append(buf, len, &at, ": reading offset ");
    append_u64(buf, len, &at, a - base);
    append(buf, len, &at,
           " of the mapped file failed (SIGBUS): the file was truncated or rewritten while strata ran, or the "
           "drive returned an I/O error; nothing computed from it is used\n");
    buf[at] = '\0';
    return true;
  }
  return false;
}

}  // namespace strata
