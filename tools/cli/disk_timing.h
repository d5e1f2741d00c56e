// Sequential O_DIRECT reads of a file through strata's RangeReader, timed: what `strata bench
// io`, `strata bench tier` and `strata tune` measure a drive with.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace strata::cli {

struct SequentialRead {
  double gb_per_s = 0;
  uint64_t bytes = 0;  // read per pass (whole blocks)
  std::string backend, fallback_reason;
  bool direct = false;
};

// Best of `repeats` passes over the first `max_bytes` of `file` (whole blocks only), in
// `block`-byte reads with `queue_depth` in flight per reader; `threads` readers, each with its
// own ring, take alternate blocks. Destinations are 4096-aligned (read in place, as expert
// buffers are) and wrap around 64 MiB per reader: the bytes are not used. A file smaller
// than one block gives bytes == 0 and no timing.
SequentialRead time_sequential_read(const std::filesystem::path& file, uint32_t block, uint32_t queue_depth,
                                    int threads, uint64_t max_bytes, int repeats);

// Writes `mib` MiB of random bytes to `file` (a new file); strata::Error naming it when that
// fails, and the partial file removed then — and when SIGINT or SIGTERM ends the process
// during the write.
void write_random_file(const std::filesystem::path& file, uint64_t mib, const char* flag);

// While it lives, SIGINT or SIGTERM removes `file` before the process ends as the signal
// would end it (a scratch file the command deletes when done). One at a time.
class RemoveOnSignal {
 public:
  explicit RemoveOnSignal(const std::filesystem::path& file);
  ~RemoveOnSignal();
  RemoveOnSignal(const RemoveOnSignal&) = delete;
  RemoveOnSignal& operator=(const RemoveOnSignal&) = delete;

 private:
  bool armed_ = false;
};

}  // namespace strata::cli
