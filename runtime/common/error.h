// Errors of the runtime: every message names what was being read (file, tensor, key, offset).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace strata {

// Bad input: a file, a config or a request that cannot be used as it is.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "FILE: what (tensor 'NAME', offset N)" — the one place that formats a location.
struct ErrorContext {
  std::string file;
  std::string tensor;  // or a key
  int64_t offset = -1;

  std::string format(const std::string& what) const;
};

[[noreturn]] void throw_error(const ErrorContext& where, const std::string& what);

}  // namespace strata
