// libFuzzer target: arbitrary bytes through the GGUF header parser. strata::Error is the
// only acceptable failure; anything else (crash, other exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/common/error.h"
#include "runtime/format/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const strata::GgufFile f = strata::parse_gguf(std::span<const uint8_t>(data, size), "fuzz.gguf");
    // Exercise what consumers do with a parsed header.
    const nlohmann::json meta = f.metadata_json();
    (void)meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    for (const auto& t : f.tensors)
      if (t.offset < f.data_offset || t.offset + t.nbytes > f.file_size) __builtin_trap();
  } catch (const strata::Error&) {
  }
  return 0;
}
