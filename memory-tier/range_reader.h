// Reads byte ranges of weight files into memory: io_uring with O_DIRECT when the kernel and
// the file system allow it, else a pool of pread calls. O_DIRECT needs aligned offsets,
// lengths and buffers, so each range is read as its aligned superset into aligned bounce
// buffers, in chunks of `block_size`, at most `queue_depth` in flight; completions are reaped
// in batches; short reads and -EAGAIN are re-queued for the rest. A request either completes
// whole or fails with a strata::Error naming the file and the offset — partially read data is
// never handed out (the destination of a failed request is left unspecified). Pieces whose
// destination is 4096-aligned and inside the request are read in place, without a copy.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace strata {

struct ReadRequest {
  uint32_t file = 0;     // index into the reader's files
  uint64_t offset = 0;   // bytes
  uint64_t length = 0;
  uint8_t* dst = nullptr;  // length bytes, any alignment
};

struct RangeReaderOptions {
  uint32_t block_size = 1u << 20;  // bytes per read (a multiple of 4096)
  uint32_t queue_depth = 32;       // reads in flight (io_uring)
  bool force_pread = false;        // skip the io_uring probe (tests, or a kernel without it)
  bool direct = true;              // O_DIRECT where the file system supports it
  // Test hook: sees every completion (its result as the kernel gave it) and may replace it
  // (a shorter count, -EIO, -EAGAIN, 0 for end of file). Called from the reading thread.
  std::function<int(uint32_t file, uint64_t offset, uint32_t length, int result)> fault;
};

class RangeReader {
 public:
  // Opens every file read-only; throws strata::Error naming a file that cannot be opened.
  static std::unique_ptr<RangeReader> open(const std::vector<std::filesystem::path>& files,
                                           const RangeReaderOptions& opts = {});
  virtual ~RangeReader() = default;

  // Reads every request; returns when all are complete. Throws strata::Error for the first
  // request that fails (I/O error, or the file ends before offset + length).
  virtual void read(std::span<const ReadRequest> requests) = 0;

  // "io_uring" or "pread", and whether O_DIRECT is in use.
  virtual std::string backend() const = 0;
  virtual bool direct() const = 0;
  // Why io_uring is not in use (empty when it is).
  virtual std::string fallback_reason() const = 0;
};

}  // namespace strata
