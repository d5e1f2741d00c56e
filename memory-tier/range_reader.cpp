#include "memory-tier/range_reader.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <tbb/parallel_for.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>

#include "runtime/common/error.h"

namespace strata {
namespace {

constexpr uint64_t kAlign = 4096;

uint64_t align_down(uint64_t x) { return x / kAlign * kAlign; }
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : p(static_cast<uint8_t*>(std::aligned_alloc(kAlign, align_up(n)))) {
    if (!p) throw Error("range reader: cannot allocate " + std::to_string(n) + " bytes of aligned buffer");
  }
  ~AlignedBuffer() { std::free(p); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* p;
};

struct OpenFile {
  std::string path;
  int fd = -1;
  bool direct = false;
  // What the file was when opened: a read finding other values fails (the weights changed
  // under us; what it would read may be neither the old nor the new bytes).
  off_t size = 0;
  struct timespec mtime = {};
};

// Why f is not the file it was when opened ("" when it is).
std::string changed_since_open(const OpenFile& f) {
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return std::string("cannot stat it: ") + std::strerror(errno);
  if (st.st_size != f.size)
    return "its size changed from " + std::to_string(f.size) + " to " + std::to_string(st.st_size) + " bytes";
  if (st.st_mtim.tv_sec != f.mtime.tv_sec || st.st_mtim.tv_nsec != f.mtime.tv_nsec) return "it was modified";
  return "";
}

// One aligned piece of one request.
struct Chunk {
  size_t request;
  uint64_t offset;  // aligned file offset
  uint64_t length;  // aligned length to read (<= block size)
  uint64_t needed;  // bytes that must be read (the rest pads to the alignment, may pass EOF)
  uint64_t done = 0;
  uint64_t reached = 0;  // furthest byte read so far (done is pulled back to an aligned offset)
  int retries = 0;
  uint8_t* direct_dst = nullptr;  // aligned and inside the request: read in place, no bounce buffer
};

std::vector<Chunk> split(std::span<const ReadRequest> reqs, uint64_t block) {
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const ReadRequest& r = reqs[i];
    if (r.length == 0) continue;
    const uint64_t a0 = align_down(r.offset), a1 = align_up(r.offset + r.length);
    for (uint64_t c = a0; c < a1; c += block) {
      const uint64_t len = std::min(block, a1 - c);
      Chunk ch{i, c, len, std::min(len, r.offset + r.length - c)};
      if (c >= r.offset && c + len <= r.offset + r.length) {
        uint8_t* d = r.dst + (c - r.offset);
        if (reinterpret_cast<uintptr_t>(d) % kAlign == 0) ch.direct_dst = d;
      }
      chunks.push_back(ch);
    }
  }
  return chunks;
}

// The part of a completed chunk that belongs to its request.
void deliver(const Chunk& c, const ReadRequest& r, const uint8_t* buf) {
  if (c.direct_dst) return;  // already in place
  const uint64_t from = std::max(c.offset, r.offset), to = std::min(c.offset + c.length, r.offset + r.length);
  std::memcpy(r.dst + (from - r.offset), buf + (from - c.offset), to - from);
}

std::string describe(const OpenFile& f, const ReadRequest& r) {
  return f.path + ": reading " + std::to_string(r.length) + " bytes at offset " + std::to_string(r.offset);
}

class ReaderBase : public RangeReader {
 public:
  ReaderBase(const std::vector<std::filesystem::path>& paths, const RangeReaderOptions& o) : opts_(o) {
    if (opts_.block_size == 0 || opts_.block_size % kAlign != 0)
      throw Error("range reader: block size " + std::to_string(opts_.block_size) + " is not a multiple of 4096");
    if (opts_.queue_depth == 0) throw Error("range reader: queue depth must be at least 1");
    for (const auto& p : paths) {
      OpenFile f;
      f.path = p.string();
      if (opts_.direct) {
        // O_NONBLOCK: a FIFO in a file's place must not block the open (refused below);
        // regular files ignore it.
        f.fd = ::open(f.path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC | O_NONBLOCK);
        f.direct = f.fd >= 0;
      }
      if (f.fd < 0) f.fd = ::open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // e.g. tmpfs has no O_DIRECT
      if (f.fd < 0) {
        const std::string why = std::strerror(errno);
        close_all();
        files_.clear();
        throw Error(f.path + ": cannot open for reading: " + why);
      }
      struct stat st;
      if (::fstat(f.fd, &st) != 0) {
        const std::string why = std::strerror(errno);
        ::close(f.fd);
        close_all();
        files_.clear();
        throw Error(f.path + ": cannot stat: " + why);
      }
      if (!S_ISREG(st.st_mode)) {
        ::close(f.fd);
        close_all();
        files_.clear();
        throw Error(f.path + ": not a regular file");
      }
      f.size = st.st_size;
      f.mtime = st.st_mtim;
      files_.push_back(f);
    }
  }
  ~ReaderBase() override { close_all(); }
  bool direct() const override {
    return !files_.empty() && std::all_of(files_.begin(), files_.end(), [](const OpenFile& f) { return f.direct; });
  }

 protected:
  void check(std::span<const ReadRequest> reqs) const {
    for (const ReadRequest& r : reqs) {
      if (r.file >= files_.size())
        throw Error("range reader: request names file " + std::to_string(r.file) + " of " +
                    std::to_string(files_.size()));
      if (r.length > 0 && !r.dst) throw Error(describe(files_[r.file], r) + ": no destination");
    }
    // Each file of the batch, once: still the file that was opened?
    std::vector<bool> seen(files_.size(), false);
    for (const ReadRequest& r : reqs) {
      if (seen[r.file]) continue;
      seen[r.file] = true;
      if (const std::string why = changed_since_open(files_[r.file]); !why.empty())
        throw Error(describe(files_[r.file], r) + ": the file changed since it was opened (" + why +
                    "); reload the model");
    }
  }
  int apply_fault(const Chunk& c, const ReadRequest& r, int res) const {
    return opts_.fault ? opts_.fault(r.file, c.offset + c.done, static_cast<uint32_t>(c.length - c.done), res) : res;
  }
  // Folds a completion into the chunk. Returns true when the chunk is complete; throws on
  // errors that cannot be retried; false means "read the rest".
  bool advance(Chunk& c, const ReadRequest& r, int res) const {
    if (res == -EAGAIN || res == -EINTR) {
      if (++c.retries > 1000)
        throw Error(describe(files_[r.file], r) + ": still busy (EAGAIN) after 1000 retries at offset " +
                    std::to_string(c.offset + c.done));
      return false;
    }
    if (res < 0)
      throw Error(describe(files_[r.file], r) + ": I/O error at offset " + std::to_string(c.offset + c.done) + ": " +
                  std::strerror(-res));
    const uint64_t end = c.done + static_cast<uint64_t>(std::max(res, 0));
    if (end >= c.needed) return true;
    // No progress past the furthest byte already read: the file ends there.
    if (res == 0 || end <= c.reached) {
      const uint64_t eof = c.offset + std::max(end, c.reached);
      throw Error(describe(files_[r.file], r) + ": the file ends at offset " + std::to_string(eof) +
                  ", before the range does (truncated or changed file?)");
    }
    c.reached = end;
    c.done = align_down(end);  // O_DIRECT resumes at an aligned offset
    return false;
  }

  RangeReaderOptions opts_;
  std::vector<OpenFile> files_;

 private:
  void close_all() {
    for (auto& f : files_)
      if (f.fd >= 0) ::close(f.fd);
  }
};

class PreadReader final : public ReaderBase {
 public:
  PreadReader(const std::vector<std::filesystem::path>& paths, const RangeReaderOptions& o, std::string reason)
      : ReaderBase(paths, o), reason_(std::move(reason)) {}
  std::string backend() const override { return "pread"; }
  std::string fallback_reason() const override { return reason_; }

  void read(std::span<const ReadRequest> reqs) override {
    check(reqs);
    std::vector<Chunk> chunks = split(reqs, opts_.block_size);
    std::mutex m;
    std::optional<std::string> error;
    tbb::parallel_for(size_t{0}, chunks.size(), [&](size_t i) {
      Chunk& c = chunks[i];
      const ReadRequest& r = reqs[c.request];
      std::optional<AlignedBuffer> bounce;
      if (!c.direct_dst) bounce.emplace(c.length);
      uint8_t* buf = c.direct_dst ? c.direct_dst : bounce->p;
      try {
        for (;;) {
          const ssize_t n = ::pread(files_[r.file].fd, buf + c.done, c.length - c.done,
                                    static_cast<off_t>(c.offset + c.done));
          if (advance(c, r, apply_fault(c, r, n < 0 ? -errno : static_cast<int>(n)))) break;
        }
        deliver(c, r, buf);
      } catch (const Error& e) {
        std::lock_guard<std::mutex> lock(m);
        if (!error) error = e.what();
      }
    });
    if (error) throw Error(*error);
  }

 private:
  std::string reason_;
};

class UringReader final : public ReaderBase {
 public:
  UringReader(const std::vector<std::filesystem::path>& paths, const RangeReaderOptions& o, io_uring* ring)
      : ReaderBase(paths, o), ring_(*ring) {
    for (uint32_t i = 0; i < opts_.queue_depth; ++i) bufs_.push_back(std::make_unique<AlignedBuffer>(opts_.block_size));
    std::vector<iovec> iov;
    for (auto& b : bufs_) iov.push_back({b->p, opts_.block_size});
    registered_ = io_uring_register_buffers(&ring_, iov.data(), static_cast<unsigned>(iov.size())) == 0;
  }
  ~UringReader() override { io_uring_queue_exit(&ring_); }
  std::string backend() const override { return "io_uring"; }
  std::string fallback_reason() const override { return ""; }

  void read(std::span<const ReadRequest> reqs) override {
    check(reqs);
    std::vector<Chunk> chunks = split(reqs, opts_.block_size);
    std::deque<size_t> todo(chunks.size());
    for (size_t i = 0; i < chunks.size(); ++i) todo[i] = i;
    std::vector<uint32_t> free_slots;
    for (uint32_t s = 0; s < bufs_.size(); ++s) free_slots.push_back(s);
    std::vector<uint32_t> slot_of(chunks.size(), 0);
    std::deque<size_t> resume;  // partly read chunks: they keep their buffer
    std::optional<std::string> error;
    size_t in_flight = 0;
    while (((!todo.empty() || !resume.empty()) && !error) || in_flight > 0) {
      // Submit while there are buffers and work (none after an error: drain, then throw).
      while (!error && (!resume.empty() || (!todo.empty() && !free_slots.empty()))) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (!sqe) break;
        size_t ci;
        if (!resume.empty()) {
          ci = resume.front();
          resume.pop_front();
        } else {
          ci = todo.front();
          todo.pop_front();
          slot_of[ci] = free_slots.back();
          free_slots.pop_back();
        }
        const uint32_t slot = slot_of[ci];
        Chunk& c = chunks[ci];
        const int fd = files_[reqs[c.request].file].fd;
        const unsigned len = static_cast<unsigned>(c.length - c.done);
        if (c.direct_dst) {
          io_uring_prep_read(sqe, fd, c.direct_dst + c.done, len, c.offset + c.done);
        } else if (registered_) {
          io_uring_prep_read_fixed(sqe, fd, bufs_[slot]->p + c.done, len, c.offset + c.done, static_cast<int>(slot));
        } else {
          io_uring_prep_read(sqe, fd, bufs_[slot]->p + c.done, len, c.offset + c.done);
        }
        io_uring_sqe_set_data64(sqe, ci);
        ++in_flight;
      }
      if (in_flight == 0) continue;
      // One system call submits what was queued and waits for at least one completion.
      // (Queued entries a failed call left unsubmitted go with the next call.)
      const int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) throw Error("io_uring submit/wait failed: " + std::string(std::strerror(-rc)));
      io_uring_cqe* batch[64];
      const unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 64);
      for (unsigned k = 0; k < n; ++k) {
        const size_t ci = io_uring_cqe_get_data64(batch[k]);
        const int raw = batch[k]->res;
        --in_flight;
        Chunk& c = chunks[ci];
        const ReadRequest& r = reqs[c.request];
        const uint32_t slot = slot_of[ci];
        try {
          if (advance(c, r, apply_fault(c, r, raw))) {
            deliver(c, r, bufs_[slot]->p);
            free_slots.push_back(slot);
          } else {
            resume.push_back(ci);  // the rest of the chunk, into the same buffer
          }
        } catch (const Error& e) {
          free_slots.push_back(slot);
          if (!error) error = e.what();
        }
      }
      io_uring_cq_advance(&ring_, n);
    }
    if (error) throw Error(*error);
  }

 private:
  io_uring ring_;
  std::vector<std::unique_ptr<AlignedBuffer>> bufs_;
  bool registered_ = false;
};

}  // namespace

std::unique_ptr<RangeReader> RangeReader::open(const std::vector<std::filesystem::path>& files,
                                               const RangeReaderOptions& opts) {
  if (opts.force_pread) return std::make_unique<PreadReader>(files, opts, "pread forced");
  io_uring ring;
  const int rc = io_uring_queue_init(std::max<uint32_t>(opts.queue_depth, 1), &ring, 0);
  if (rc < 0)
    return std::make_unique<PreadReader>(files, opts, "io_uring unavailable: " + std::string(std::strerror(-rc)));
  try {
    return std::make_unique<UringReader>(files, opts, &ring);
  } catch (...) {
    // UringReader's constructor failed before owning the ring.
    io_uring_queue_exit(&ring);
    throw;
  }
}

}  // namespace strata
