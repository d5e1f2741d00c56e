// libFuzzer target: arbitrary bytes as a tokenizer.json (the first half of the input) and a
// tokenizer_config.json (the rest, after a NUL). Loading either gives a tokenizer or throws
// strata::Error naming the file — never another exception (a JSON type error names nothing),
// never a crash, whatever the nesting, ids or sizes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/common/error.h"
#include "runtime/common/json_file.h"
#include "runtime/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string tj = all.substr(0, nul), cj = nul == std::string::npos ? "" : all.substr(nul + 1);
  try {
    const nlohmann::json t = strata::parse_json_bounded(tj, "tokenizer.json");
    nlohmann::json c;
    if (!cj.empty()) c = strata::parse_json_bounded(cj, "tokenizer_config.json");
    const strata::Tokenizer tok = strata::Tokenizer::from_hf_json(t, cj.empty() ? nullptr : &c, "tokenizer.json");
    (void)tok.encode("Hello, 世界 <｜User｜>", true);
  } catch (const strata::Error&) {
  } catch (...) {
    __builtin_trap();
  }
  return 0;
}
