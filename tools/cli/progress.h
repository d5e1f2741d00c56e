// A progress line on standard error for work that takes more than a second (loading experts
// into DRAM, drawing a large tiny model): "LABEL: 120 of 260 (46%)", redrawn in place, only on
// a terminal. Returns an empty function when standard error is not a terminal.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace strata::cli {

std::function<void(size_t done, size_t total)> terminal_progress(const std::string& label);

}  // namespace strata::cli
