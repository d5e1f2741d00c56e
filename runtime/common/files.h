// The files a command reads and writes.
//
// Inputs are opened only when they are regular files: a FIFO would block the open forever, a
// device such as /dev/zero never ends, a directory is not a file; each is refused with a
// message naming it. Every input is remembered (device and inode), and so is every output:
// an output never replaces a file this process reads (a model file, a config, a tokenizer, a
// profile) nor another of its outputs, and is written to a temporary file beside it and
// renamed into place, so a failed write leaves the old file as it was.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata {

// While on (a command's run: the CLI turns it on), inputs and outputs are remembered and
// check_output_path refuses them; off (the default, e.g. a library user or a test writing a
// file twice), only the path itself is checked. Turning it on or off forgets what was seen.
void guard_command_files(bool on);

// How messages name an input: "--placement plan.json" when a command-line flag gave it (as
// outputs are named), the path alone otherwise.
std::string input_name(const std::filesystem::path& path, std::string_view flag);

// Opens path read-only (close-on-exec) after checking it is a regular file, and records it as
// an input. Throws strata::Error naming the file (with `flag`, the option that gave it, when
// not empty) and `what` it was meant to be otherwise.
int open_input_file(const std::filesystem::path& path, std::string_view what = "file", std::string_view flag = {});

// A regular file read whole, at most max_bytes (a larger file is an error naming its size).
std::string read_input_file(const std::filesystem::path& path, std::string_view what = "file",
                            uint64_t max_bytes = uint64_t{1} << 30, std::string_view flag = {});

// The first `bytes` bytes of a regular file (the whole file when it is shorter).
std::string read_input_prefix(const std::filesystem::path& path, std::string_view what, uint64_t bytes,
                              std::string_view flag = {});

// Records a file this process reads that was opened elsewhere.
void note_input_file(const std::filesystem::path& path);

// Throws strata::Error unless path may be written by this command: not a directory (nor a
// device, FIFO or socket), and while guarding, not an input of this command nor an output it
// already wrote. `flag` names the option it came
// from ("--out"), for the message.
void check_output_path(const std::filesystem::path& path, std::string_view flag);

// check_output_path for each (path, flag) whose path is not empty, and no two the same file:
// before a command writes the first of several outputs.
void check_output_paths(const std::vector<std::pair<std::filesystem::path, std::string>>& outputs);

// Writes the pieces to a temporary file beside path, then renames it over path (after
// check_output_path); the temporary file is removed on any failure. Records path as an output.
void write_output_file(const std::filesystem::path& path, const std::vector<std::pair<const void*, size_t>>& pieces,
                       std::string_view flag);
void write_output_file(const std::filesystem::path& path, std::string_view text, std::string_view flag);

// An output written piece by piece (one too large to hold in memory): created as a temporary
// file beside path (after check_output_path), renamed into place by commit(). Destroyed
// without commit() — a failure or an exception on the way — the temporary file is removed and
// an existing file at path is left as it was.
class OutputFile {
 public:
  OutputFile(std::filesystem::path path, std::string_view flag);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  // Throws strata::Error naming the file when the write fails (a full disk, an I/O error).
  void write(const void* data, size_t n);
  void commit();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
};

// Creates a scratch file that must not exist beforehand (O_EXCL): a benchmark's file never
// replaces one of the user's. Returns the descriptor (read-write, close-on-exec).
int create_scratch_file(const std::filesystem::path& path, std::string_view flag);

}  // namespace strata
