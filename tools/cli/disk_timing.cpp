#include "tools/cli/disk_timing.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "memory-tier/range_reader.h"
#include "runtime/common/error.h"
#include "runtime/common/files.h"

namespace strata::cli {

SequentialRead time_sequential_read(const std::filesystem::path& file, uint32_t block, uint32_t queue_depth,
                                    int threads, uint64_t max_bytes, int repeats) {
  SequentialRead r;
  threads = std::max(1, threads);
  r.bytes = std::min<uint64_t>(std::filesystem::file_size(file), max_bytes) / block * block;
  if (r.bytes == 0) return r;
  RangeReaderOptions o;
  o.block_size = block;
  o.queue_depth = queue_depth;
  const uint64_t wrap = std::max<uint64_t>(block, (uint64_t{64} << 20) / block * block);
  std::vector<std::unique_ptr<RangeReader>> readers;
  std::vector<std::unique_ptr<uint8_t, void (*)(void*)>> dst;
  std::vector<std::vector<ReadRequest>> reqs(static_cast<size_t>(threads));
  for (int k = 0; k < threads; ++k) {
    readers.push_back(RangeReader::open({file}, o));
    dst.emplace_back(static_cast<uint8_t*>(std::aligned_alloc(4096, wrap)), std::free);
    if (!dst.back()) throw Error("cannot allocate a read buffer of " + std::to_string(wrap) + " bytes");
    std::memset(dst.back().get(), 0, wrap);  // fault the pages in before timing
  }
  for (uint64_t off = 0, i = 0; off < r.bytes; off += block, ++i) {
    const size_t k = i % static_cast<size_t>(threads);
    reqs[k].push_back({0, off, block, dst[k].get() + off % wrap});
  }
  for (int rep = 0; rep < repeats; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int k = 1; k < threads; ++k) pool.emplace_back([&, k] { readers[k]->read(reqs[k]); });
    readers[0]->read(reqs[0]);
    for (std::thread& th : pool) th.join();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.gb_per_s = std::max(r.gb_per_s, double(r.bytes) / dt / 1e9);
  }
  r.backend = readers[0]->backend();
  r.direct = readers[0]->direct();
  r.fallback_reason = readers[0]->fallback_reason();
  return r;
}

namespace {

// The file RemoveOnSignal guards, for the handler (which may only call async-signal-safe
// functions: unlink, sigaction, raise).
char g_guarded[4096];
struct sigaction g_old_int, g_old_term;

extern "C" void remove_guarded_and_die(int sig) {
  if (g_guarded[0]) ::unlink(g_guarded);
  ::sigaction(sig == SIGINT ? SIGINT : SIGTERM, sig == SIGINT ? &g_old_int : &g_old_term, nullptr);
  ::raise(sig);
}

}  // namespace

RemoveOnSignal::RemoveOnSignal(const std::filesystem::path& file) {
  const std::string p = std::filesystem::absolute(file).string();
  if (g_guarded[0] || p.size() >= sizeof g_guarded) return;  // one at a time; a path too long stays unguarded
  std::memcpy(g_guarded, p.c_str(), p.size() + 1);
  struct sigaction sa {};
  sa.sa_handler = remove_guarded_and_die;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &g_old_int);
  ::sigaction(SIGTERM, &sa, &g_old_term);
  // A signal the process was told to ignore (a background job's SIGINT) stays ignored.
  if (g_old_int.sa_handler == SIG_IGN) ::sigaction(SIGINT, &g_old_int, nullptr);
  if (g_old_term.sa_handler == SIG_IGN) ::sigaction(SIGTERM, &g_old_term, nullptr);
  armed_ = true;
}

RemoveOnSignal::~RemoveOnSignal() {
  if (!armed_) return;
  ::sigaction(SIGINT, &g_old_int, nullptr);
  ::sigaction(SIGTERM, &g_old_term, nullptr);
  g_guarded[0] = 0;
}

void write_random_file(const std::filesystem::path& file, uint64_t mib, const char* flag) {
  const int fd = create_scratch_file(file, flag);  // a new file only: never one of the user's
  const RemoveOnSignal guard(file);
  std::vector<char> chunk(1 << 20);
  std::mt19937 g(7);
  for (auto& c : chunk) c = static_cast<char>(g());
  for (uint64_t i = 0; i < mib; ++i)
    for (size_t done = 0; done < chunk.size();) {
      const ssize_t w = ::write(fd, chunk.data() + done, chunk.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = w < 0 ? errno : EIO;
        ::close(fd);
        ::unlink(file.c_str());  // ours: created above
        throw Error(file.string() + ": cannot write the scratch file (" + std::strerror(err) +
                    "; a writable drive with room for it?)");
      }
      done += static_cast<size_t>(w);
    }
  ::close(fd);
}

}  // namespace strata::cli
