#include "tools/cli/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace strata::cli {

std::function<void(size_t, size_t)> terminal_progress(const std::string& label) {
  if (!::isatty(2)) return {};
  const auto t0 = std::chrono::steady_clock::now();
  return [label, t0, shown = false](size_t done, size_t total) mutable {
    if (!shown && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1)) return;
    shown = true;
    std::fprintf(stderr, "\r%s: %zu of %zu (%zu%%)%s", label.c_str(), done, total, total ? 100 * done / total : 100,
                 done >= total ? "\n" : "");
    std::fflush(stderr);
  };
}

}  // namespace strata::cli
