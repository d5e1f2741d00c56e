// libFuzzer target: arbitrary bytes as config.json. strata::Error is the only acceptable
// failure; a config that parses must survive a round trip through to_hf_config_json.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/config/model_config.h"
#include "runtime/format/strict_json.h"
#include "runtime/model/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const nlohmann::json j = strata::parse_json_strict(text, "fuzz/config.json", 0);
    const strata::ModelConfig c = strata::parse_hf_config(j, "fuzz/config.json");
    const strata::ParamCounts p = strata::count_params(c);
    const strata::ModelConfig again = strata::parse_hf_config(strata::to_hf_config_json(c), "round-trip");
    const strata::ParamCounts q = strata::count_params(again);
    if (p.total != q.total || p.active != q.active) __builtin_trap();
  } catch (const strata::Error&) {
  }
  return 0;
}
