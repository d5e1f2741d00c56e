// libFuzzer target: arbitrary bytes through the safetensors header parser. strata::Error is the
// only acceptable failure; anything else (crash, other exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <span>

#include "runtime/common/error.h"
#include "runtime/format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const strata::SafetensorsFile f =
        strata::parse_safetensors(std::span<const uint8_t>(data, size), size, "fuzz.safetensors");
    // What consumers rely on: every range inside the data section, sorted, disjoint.
    uint64_t end = f.data_offset;
    for (const auto& t : f.tensors) {
      if (t.offset < f.data_offset || t.nbytes > f.file_size - t.offset) __builtin_trap();
      if (t.nbytes > 0 && t.offset < end) __builtin_trap();
      if (t.nbytes > 0) end = t.offset + t.nbytes;
    }
  } catch (const strata::Error&) {
  }
  return 0;
}
