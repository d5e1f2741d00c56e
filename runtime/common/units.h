// Byte counts for people: "512 B", "12.00 KiB", "1.50 MiB", "2.25 GiB".
#pragma once

#include <cstdint>
#include <string>

namespace strata {

std::string human_bytes(uint64_t bytes);

}  // namespace strata
