// libFuzzer target: arbitrary bytes through the byte-level BPE tokenizer (the generated
// vocabulary, same pre-tokenizer as DeepSeek-V3). encode never throws; without special-token
// parsing, decode(encode(text)) == text for valid UTF-8; streamed decoding equals decode.
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/utf8.h"

namespace {

const strata::Tokenizer& tokenizer() {
  static const strata::Tokenizer tok = [] {
    const nlohmann::json cfg = strata::make_synthetic_tokenizer_config_json();
    return strata::Tokenizer::from_hf_json(strata::make_synthetic_tokenizer_json(512), &cfg, "synthetic");
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const strata::Tokenizer& tok = tokenizer();
  const auto plain = tok.encode(text, /*parse_special=*/false);
  const std::string back = tok.decode(plain);
  if (strata::utf8::is_valid(text) && back != text) __builtin_trap();
  strata::StreamDecoder stream(tok);
  std::string streamed;
  for (int32_t id : plain) streamed += stream.push(id);
  streamed += stream.flush();
  if (streamed != back) __builtin_trap();
  (void)tok.encode(text, /*parse_special=*/true);
  return 0;
}
