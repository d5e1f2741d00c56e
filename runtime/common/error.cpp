#include "runtime/common/error.h"

namespace strata {

std::string ErrorContext::format(const std::string& what) const {
  std::string msg;
  if (!file.empty()) msg += file + ": ";
  msg += what;
  if (!tensor.empty() || offset >= 0) {
    msg += " (";
    if (!tensor.empty()) msg += "'" + tensor + "'";
    if (!tensor.empty() && offset >= 0) msg += ", ";
    if (offset >= 0) msg += "offset " + std::to_string(offset);
    msg += ")";
  }
  return msg;
}

void throw_error(const ErrorContext& where, const std::string& what) { throw Error(where.format(what)); }

}  // namespace strata
