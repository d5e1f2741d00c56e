#include "runtime/format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "runtime/common/error.h"
#include "runtime/common/files.h"

namespace strata {
namespace {

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
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
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

}  // namespace strata
