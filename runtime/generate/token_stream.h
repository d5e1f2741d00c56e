// One generation's token-to-text path, shared by the engine (serve) and the one-sequence loop
// (run, chat): padding rows masked, a token sampled, its text formed into whole UTF-8
// characters, stop strings held back until they can be ruled out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/generate/sampler.h"
#include "runtime/generate/stop_text.h"
#include "runtime/generate/vocab_mask.h"
#include "runtime/tokenizer/tokenizer.h"

namespace strata {

struct GenerationParams;

class TokenStream {
 public:
  // tok and mask must outlive the stream.
  TokenStream(const Tokenizer& tok, const VocabMask& mask, const GenerationParams& p);
  struct Token {
    int32_t id = -1;
    bool eos = false;      // the end-of-sequence token, and the params do not ignore it: no text
    std::string text;      // what may be shown now
    bool stopped = false;  // a stop string completed: text ends before it
  };
  // Masks the padding rows of logits, samples, and turns the token into text.
  Token next(std::vector<float>& logits);
  // The text held back at the end of the generation (none after a stop string).
  std::string flush();

 private:
  const Tokenizer& tok_;
  const VocabMask& mask_;
  bool ignore_eos_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopText stop_;
};

}  // namespace strata
