// libFuzzer target: arbitrary bytes as a hardware profile (JSON with comments). Parsing gives a
// profile or throws strata::Error naming the key — never another exception, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "memory-tier/hardware_profile.h"
#include "runtime/common/error.h"
#include "runtime/common/json_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const strata::HardwareProfile p =
        strata::parse_profile(strata::parse_json_bounded(text, "profile.json", /*comments=*/true), "profile.json");
    (void)strata::profile_json(p);
  } catch (const strata::Error&) {
  } catch (...) {
    __builtin_trap();
  }
  return 0;
}
