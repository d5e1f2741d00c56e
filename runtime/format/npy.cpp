#include "runtime/format/npy.h"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "runtime/common/error.h"
#include "runtime/common/files.h"

namespace strata {

void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data) {
  std::string dims;
  int64_t n = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    n *= d;
  }
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic(6) + version(2) + header length(2) + header, padded with spaces and '\n' to 64 bytes.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  const uint16_t hlen = static_cast<uint16_t>(header.size());
  write_output_file(path,
                    {{"\x93NUMPY\x01\x00", 8},
                     {&hlen, 2},
                     {header.data(), header.size()},
                     {data, static_cast<size_t>(n) * 4}},
                    "--out");
}

NpyArray read_npy_f32(const std::filesystem::path& path) {
  ::close(open_input_file(path, ".npy file"));  // a regular file (a FIFO would block the open below)
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path.string() + ": cannot open");
  char pre[10];
  if (!f.read(pre, 10) || std::memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1)
    throw_error({path.string(), "", 0}, "not a version 1 .npy file");
  uint16_t hlen;
  std::memcpy(&hlen, pre + 8, 2);
  std::string header(hlen, '\0');
  if (!f.read(header.data(), hlen)) throw_error({path.string(), "", 10}, "truncated header");
  if (header.find("'descr': '<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    throw_error({path.string(), "", 10}, "only little-endian float32 C-order arrays are read");
  const size_t open = header.find('('), close = header.find(')');
  if (open == std::string::npos || close == std::string::npos || close < open)
    throw_error({path.string(), "", 10}, "header has no shape");
  NpyArray a;
  int64_t n = 1;
  const std::string dims = header.substr(open + 1, close - open - 1);
  size_t i = 0;
  while (i < dims.size()) {
    while (i < dims.size() && (dims[i] == ' ' || dims[i] == ',')) ++i;
    if (i >= dims.size()) break;
    size_t used = 0;
    const int64_t d = std::stoll(dims.substr(i), &used);
    if (d < 0 || d > (int64_t{1} << 40)) throw_error({path.string(), "", 10}, "bad dimension in shape");
    a.shape.push_back(d);
    n *= d;
    i += used;
  }
  a.data.resize(static_cast<size_t>(n));
  if (!f.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(n * 4)))
    throw_error({path.string(), "", 10 + hlen}, "data shorter than the shape says");
  return a;
}

}  // namespace strata
