#include "runtime/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "runtime/common/activity.h"
#include "runtime/common/error.h"

namespace strata {
namespace {

struct FileId {
  dev_t dev;
  ino_t ino;
  bool operator<(const FileId& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
};

struct Registry {
  std::mutex mu;
  bool guarding = false;
  std::set<FileId> inputs, outputs;
};

Registry& registry() {
  static Registry r;
  return r;
}

[[noreturn]] void fail(const std::filesystem::path& p, const std::string& what) { throw Error(p.string() + ": " + what); }
[[noreturn]] void fail(const std::string& name, const std::string& what) { throw Error(name + ": " + what); }

std::string errno_text(int err) { return std::strerror(err); }

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

void remember(const struct stat& st, bool input) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  if (r.guarding) (input ? r.inputs : r.outputs).insert({st.st_dev, st.st_ino});
}

void write_all(int fd, const void* data, size_t n, const std::filesystem::path& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(path, "write failed: " + errno_text(w < 0 ? errno : EIO));
    done += static_cast<size_t>(w);
  }
}

}  // namespace

std::string input_name(const std::filesystem::path& path, std::string_view flag) {
  return flag.empty() ? path.string() : std::string(flag) + " " + path.string();
}

int open_input_file(const std::filesystem::path& path, std::string_view what, std::string_view flag) {
  const std::string name = input_name(path, flag);
  // O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(name, "cannot open " + std::string(what) + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail(name, "cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(name, "not a regular file (" + std::string(kind_of(st.st_mode)) + "); expected a " + std::string(what));
  }
  remember(st, true);
  return fd;
}

namespace {

// Up to n bytes of fd from its start (fewer when it shrank meanwhile); closes fd.
std::string read_up_to(int fd, uint64_t n, const std::filesystem::path& path, const std::string& name) {
  const std::string shown = path.string();  // outlives the activity
  const Activity doing("reading", shown, static_cast<int64_t>(n), "bytes");
  std::string out(static_cast<size_t>(n), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t r = ::read(fd, out.data() + done, out.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int err = errno;
      ::close(fd);
      fail(name, "read failed: " + errno_text(err));
    }
    if (r == 0) break;  // shrank while read: what is there
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

}  // namespace

std::string read_input_file(const std::filesystem::path& path, std::string_view what, uint64_t max_bytes,
                            std::string_view flag) {
  const std::string name = input_name(path, flag);
  const int fd = open_input_file(path, what, flag);
  struct stat st {};
  ::fstat(fd, &st);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    fail(name, std::to_string(st.st_size) + " bytes is more than a " + std::string(what) + " may be (" +
                   std::to_string(max_bytes) + ")");
  }
  return read_up_to(fd, static_cast<uint64_t>(st.st_size), path, name);
}

std::string read_input_prefix(const std::filesystem::path& path, std::string_view what, uint64_t bytes,
                              std::string_view flag) {
  const int fd = open_input_file(path, what, flag);
  struct stat st {};
  ::fstat(fd, &st);
  return read_up_to(fd, std::min(bytes, static_cast<uint64_t>(st.st_size)), path, input_name(path, flag));
}

void note_input_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) remember(st, true);
}

void guard_command_files(bool on) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  r.guarding = on;
  r.inputs.clear();
  r.outputs.clear();
}

void check_output_path(const std::filesystem::path& path, std::string_view flag) {
  const std::string where = std::string(flag) + " " + path.string();
  if (path.empty()) throw Error(std::string(flag) + ": empty path");
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) throw Error(where + ": cannot stat: " + errno_text(errno));
  if (exists && S_ISDIR(st.st_mode)) throw Error(where + ": is a directory, not a file to write");
  if (exists && !S_ISREG(st.st_mode))
    throw Error(where + ": is " + kind_of(st.st_mode) + ", not a file to write");
  // The temporary file is created in the folder and renamed there: the folder must take it
  // now, not after the minutes a command may compute.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) != 0)
    throw Error(where + ": the folder " + dir.string() + ": " + errno_text(errno));
  if (!S_ISDIR(ds.st_mode)) throw Error(where + ": " + dir.string() + " is not a folder");
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(where + ": cannot write into the folder " + dir.string() + ": " + errno_text(errno));
  if (!exists) return;  // a new file
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  if (r.inputs.count({st.st_dev, st.st_ino}))
    throw Error(where + ": is a file this command reads (a model, config, tokenizer or profile file); "
                        "refusing to overwrite it");
  if (r.outputs.count({st.st_dev, st.st_ino}))
    throw Error(where + ": this command already wrote that file (two outputs name the same path)");
}

void check_output_paths(const std::vector<std::pair<std::filesystem::path, std::string>>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].first.empty()) continue;
    check_output_path(outputs[i].first, outputs[i].second);
    for (size_t j = 0; j < i; ++j)
      if (!outputs[j].first.empty() && std::filesystem::weakly_canonical(outputs[i].first) ==
                                           std::filesystem::weakly_canonical(outputs[j].first))
        throw Error(outputs[i].second + " " + outputs[i].first.string() + ": the same file as " + outputs[j].second +
                    "; give each output its own path");
  }
}

OutputFile::OutputFile(std::filesystem::path path, std::string_view flag) : path_(std::move(path)) {
  check_output_path(path_, flag);
  tmp_ = path_.string() + ".tmp." + std::to_string(::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(tmp_, "cannot create: " + errno_text(errno));
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void OutputFile::write(const void* data, size_t n) {
  if (fd_ < 0) fail(path_, "write after the file was committed");
  write_all(fd_, data, n, path_);
}

void OutputFile::commit() {
  if (fd_ < 0) fail(path_, "committed twice");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail(path_, "close failed: " + errno_text(err));
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    fail(path_, "cannot rename the temporary file into place: " + errno_text(err));
  }
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) remember(st, false);
}

void write_output_file(const std::filesystem::path& path, const std::vector<std::pair<const void*, size_t>>& pieces,
                       std::string_view flag) {
  OutputFile out(path, flag);
  for (const auto& [data, n] : pieces) out.write(data, n);
  out.commit();
}

void write_output_file(const std::filesystem::path& path, std::string_view text, std::string_view flag) {
  write_output_file(path, {{text.data(), text.size()}}, flag);
}

int create_scratch_file(const std::filesystem::path& path, std::string_view flag) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST)
      throw Error(std::string(flag) + " " + path.string() +
                  ": exists; a scratch file must be new (it is overwritten and deleted)");
    throw Error(std::string(flag) + " " + path.string() + ": cannot create the scratch file: " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0) remember(st, false);
  return fd;
}

}  // namespace strata
