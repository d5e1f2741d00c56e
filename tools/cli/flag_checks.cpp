// Numeric flag checks with readable messages (commands.h).
#include <cmath>
#include <sstream>
#include <string>

#include "runtime/common/error.h"
#include "runtime/tokenizer/utf8.h"
#include "tools/cli/commands.h"

namespace strata::cli {

CLI::Validator finite_in(double lo, double hi, const std::string& what) {
  return CLI::Validator(
      [lo, hi, what](std::string& v) -> std::string {
        double x = 0;
        size_t used = 0;
        try {
          x = std::stod(v, &used);
        } catch (const std::exception&) {
          return "'" + v + "' is not a number (" + what + ")";
        }
        if (used != v.size()) return "'" + v + "' is not a number (" + what + ")";
        if (!std::isfinite(x)) return "'" + v + "' is not a finite number (" + what + ")";
        if (x < lo || x > hi) {
          std::ostringstream msg;
          msg.precision(12);
          msg << v << " is outside [" << lo << ", " << hi << "] (" << what << ")";
          return msg.str();
        }
        return {};
      },
      what);
}

CLI::Validator mib_size() {
  return finite_in(1.0 / 256, 1024.0 * 1024 * 1024, "MiB, from 0.00390625 (4 KiB) to 1073741824 (1 PiB)");
}

uint64_t mib_to_bytes(double mb) { return static_cast<uint64_t>(mb * 1024 * 1024); }

void require_utf8(const std::string& text, const std::string& flag) {
  if (utf8::is_valid(text)) return;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8::seq_len(static_cast<uint8_t>(text[i]));
    if (i + n > text.size() || !utf8::is_valid(std::string_view(text).substr(i, n)))
      throw Error(flag + ": not valid UTF-8 (an ill-formed byte sequence at byte " + std::to_string(i) +
                  "); strata will not guess what it meant");
    i += n;
  }
}

}  // namespace strata::cli
