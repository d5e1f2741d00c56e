/* An LD_PRELOAD shim for the I/O fault tests (tests/cli/io_errors.sh): pread / pread64 of a file
 * whose path contains $STRATA_EIO_FILE fail with EIO when the range read overlaps the bytes
 * $STRATA_EIO_RANGE ("BEGIN-END", END excluded) — while the file $STRATA_EIO_WHILE exists, when
 * that is set (a test turns the fault on and off under a running process). Any other
 * read goes to the C library. It lets a test give a running strata a disk that fails at one
 * place, without root or a device-mapper error target. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int should_fail(int fd, size_t n, off_t off) {
  const char* name = getenv("STRATA_EIO_FILE");
  const char* range = getenv("STRATA_EIO_RANGE");
  long long begin = 0, end = 0;
  if (!name || !range || sscanf(range, "%lld-%lld", &begin, &end) != 2) return 0;
  if (!(off < end && begin < off + (off_t)n)) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t k = readlink(link, path, sizeof path - 1);
  if (k <= 0) return 0;
  path[k] = 0;
  if (!strstr(path, name)) return 0;
  const char* flag = getenv("STRATA_EIO_WHILE");
  return !flag || access(flag, F_OK) == 0;
}

typedef ssize_t (*pread_fn)(int, void*, size_t, off_t);

static ssize_t forward(const char* sym, int fd, void* buf, size_t n, off_t off) {
  pread_fn real = (pread_fn)dlsym(RTLD_NEXT, sym);
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  return real(fd, buf, n, off);
}

ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  if (should_fail(fd, n, off)) {
    errno = EIO;
    return -1;
  }
  return forward("pread", fd, buf, n, off);
}

ssize_t pread64(int fd, void* buf, size_t n, off_t off) {
  if (should_fail(fd, n, off)) {
    errno = EIO;
    return -1;
  }
  return forward("pread64", fd, buf, n, off);
}
