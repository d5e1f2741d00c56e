// libFuzzer target: arbitrary bytes as an expert-hotness file (`strata profile --out`). Parsing
// gives the map or throws strata::Error naming the file and entry — never another exception.
#include <cstddef>
#include <cstdint>
#include <string>

#include "memory-tier/hotness.h"
#include "runtime/common/error.h"
#include "runtime/common/json_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)strata::parse_hotness(strata::parse_json_bounded(text, "hotness.json"), "hotness.json");
  } catch (const strata::Error&) {
  } catch (...) {
    __builtin_trap();
  }
  return 0;
}
