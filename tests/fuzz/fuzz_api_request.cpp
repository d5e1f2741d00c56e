// libFuzzer target: arbitrary bytes as the body of a chat (first byte even) or completions
// request to `strata serve`. Parsing gives a request or throws ApiError / strata::Error (a 400
// naming the field) — never another exception, never a crash, whatever the nesting or types.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/common/error.h"
#include "runtime/common/json_file.h"
#include "runtime/serve/openai_api.h"
#include "runtime/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const strata::Tokenizer tok =
      strata::Tokenizer::from_hf_json(strata::make_synthetic_tokenizer_json(400), nullptr, "synthetic");
  if (size == 0) return 0;
  const bool chat = data[0] % 2 == 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const nlohmann::json j = strata::parse_json_bounded(body, "request body");
    strata::ApiLimits lim;
    lim.context = 64;
    lim.max_tokens = 32;
    const strata::ApiRequest r = strata::parse_api_request(j, chat, tok, lim);
    if (r.prompt.empty() || static_cast<int64_t>(r.prompt.size()) >= lim.context || r.params.max_tokens < 1 ||
        r.params.max_tokens > lim.max_tokens)
      __builtin_trap();  // accepted what the limits refuse
  } catch (const strata::ApiError&) {
  } catch (const strata::Error&) {
  } catch (...) {
    __builtin_trap();
  }
  return 0;
}
