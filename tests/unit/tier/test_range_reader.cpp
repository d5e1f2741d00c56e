// RangeReader against plain file contents, on both backends, with injected faults.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <random>

#include "memory-tier/range_reader.h"
#include "tests/support/test_support.h"

namespace strata {
namespace {

RangeReaderOptions opts(bool force_pread, uint32_t block = 1u << 20) {
  RangeReaderOptions o;
  o.force_pread = force_pread;
  o.block_size = block;
  return o;
}

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  std::mt19937 g(5);
  for (auto& b : v) b = static_cast<uint8_t>(g());
  return v;
}

struct Fixture {
  test::ScratchDir dir{"reader"};
  std::vector<uint8_t> a = pattern(3 * 1024 * 1024 + 123), b = pattern(70001);
  std::vector<std::filesystem::path> files;
  Fixture() {
    test::write_bytes(dir / "a.bin", a);
    test::write_bytes(dir / "b.bin", b);
    files = {dir / "a.bin", dir / "b.bin"};
  }
};

// Unaligned ranges: inside one block, across many blocks, ending exactly at end of file.
std::vector<std::tuple<uint32_t, uint64_t, uint64_t>> ranges(const Fixture& f) {
  return {{0, 1, 10},       {0, 4095, 2},          {0, 12345, 1000000}, {0, 0, f.a.size()},
          {0, f.a.size() - 77, 77}, {1, 3, 70001 - 3}, {1, 65536, 4465},    {0, 2 * 1024 * 1024, 0}};
}

void expect_reads(const Fixture& f, RangeReaderOptions o) {
  auto r = RangeReader::open(f.files, o);
  const auto rs = ranges(f);
  std::vector<std::vector<uint8_t>> out(rs.size());
  std::vector<ReadRequest> reqs;
  for (size_t i = 0; i < rs.size(); ++i) {
    auto [file, off, len] = rs[i];
    out[i].assign(len, 0xAB);
    reqs.push_back({file, off, len, out[i].data()});
  }
  r->read(reqs);
  for (size_t i = 0; i < rs.size(); ++i) {
    auto [file, off, len] = rs[i];
    const auto& src = file == 0 ? f.a : f.b;
    EXPECT_TRUE(std::equal(out[i].begin(), out[i].end(), src.begin() + static_cast<long>(off)))
        << r->backend() << " range " << i;
  }
}

TEST(RangeReader, BothBackendsReadExactBytes) {
  Fixture f;
  for (bool force_pread : {false, true}) {
    for (uint32_t block : {8192u, 1u << 20}) {
      RangeReaderOptions o;
      o.force_pread = force_pread;
      o.block_size = block;
      o.queue_depth = 4;
      auto r = RangeReader::open(f.files, o);
      if (!force_pread && r->backend() != "io_uring")
        std::printf("  io_uring not available here (%s): the pread backend is tested twice\n",
                    r->fallback_reason().c_str());
      expect_reads(f, o);
    }
  }
}

TEST(RangeReader, ShortReadsAndEagainAreRetried) {
  Fixture f;
  for (bool force_pread : {false, true}) {
    RangeReaderOptions o;
    o.force_pread = force_pread;
    o.block_size = 65536;
    int calls = 0;
    o.fault = [&calls](uint32_t, uint64_t, uint32_t, int res) {
      ++calls;
      if (calls % 3 == 1) return -EAGAIN;
      if (res > 5000) return res / 2 + 17;  // short and unaligned
      return res;
    };
    expect_reads(f, o);
    EXPECT_GT(calls, 100);
  }
}

TEST(RangeReader, IoErrorsAndShortFilesNameFileAndOffset) {
  Fixture f;
  for (bool force_pread : {false, true}) {
    RangeReaderOptions o;
    o.force_pread = force_pread;
    o.block_size = 65536;
    o.fault = [](uint32_t file, uint64_t offset, uint32_t, int res) {
      return file == 0 && offset <= 1000000 && offset + 65536 > 1000000 ? -EIO : res;
    };
    auto r = RangeReader::open(f.files, o);
    std::vector<uint8_t> out(2000000);
    const ReadRequest bad{0, 10, 2000000, out.data()};
    STRATA_EXPECT_ERROR(r->read(std::span(&bad, 1)), "a.bin", "offset 983040", "Input/output error");
    // Past the end of the file (as if it were truncated after indexing).
    auto plain = RangeReader::open(f.files, opts(force_pread));
    const ReadRequest past{1, 70000, 100, out.data()};
    STRATA_EXPECT_ERROR(plain->read(std::span(&past, 1)), "b.bin", "ends at offset 70001");
    // A device that never stops answering EAGAIN is an error, not a hang.
    RangeReaderOptions busy = opts(force_pread);
    busy.fault = [](uint32_t, uint64_t, uint32_t, int) { return -EAGAIN; };
    const ReadRequest small{1, 0, 10, out.data()};
    STRATA_EXPECT_ERROR(RangeReader::open(f.files, busy)->read(std::span(&small, 1)), "b.bin", "EAGAIN");
    // The reader is still usable after a failed request.
    expect_reads(f, opts(force_pread));
  }
}

// A weight file written to or truncated after it was opened: the next read fails naming the
// file instead of returning bytes that may be neither the old nor the new contents.
TEST(RangeReader, FilesChangedUnderTheReaderAreRefused) {
  for (bool force_pread : {false, true}) {
    Fixture f;
    auto r = RangeReader::open(f.files, opts(force_pread));
    std::vector<uint8_t> out(100);
    const ReadRequest req{1, 0, 100, out.data()};
    r->read(std::span(&req, 1));  // unchanged: fine
    // Same size, new bytes and a new modification time.
    std::vector<uint8_t> other = f.b;
    other[5] ^= 0xFF;
    test::write_bytes(f.dir / "b.bin", other);
    const struct timespec later[2] = {{0, UTIME_OMIT}, {time(nullptr) + 5, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, (f.dir / "b.bin").c_str(), later, 0), 0);
    STRATA_EXPECT_ERROR(r->read(std::span(&req, 1)), "b.bin", "changed since it was opened", "modified");
    // Truncated: the size is named.
    std::filesystem::resize_file(f.dir / "a.bin", 4096);
    const ReadRequest in_a{0, 0, 100, out.data()};
    STRATA_EXPECT_ERROR(r->read(std::span(&in_a, 1)), "a.bin", "size changed from 3145851 to 4096");
  }
}

TEST(RangeReader, BadArgumentsAreErrors) {
  Fixture f;
  STRATA_EXPECT_ERROR(RangeReader::open({f.dir / "missing.bin"}), "missing.bin", "cannot open");
  STRATA_EXPECT_ERROR(RangeReader::open(f.files, opts(false, 1000)), "block size 1000");
  auto r = RangeReader::open(f.files);
  uint8_t x;
  const ReadRequest wrong{7, 0, 1, &x};
  STRATA_EXPECT_ERROR(r->read(std::span(&wrong, 1)), "file 7 of 2");
}

}  // namespace
}  // namespace strata
