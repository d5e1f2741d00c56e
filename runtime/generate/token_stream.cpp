#include "runtime/generate/token_stream.h"

#include "runtime/generate/engine.h"

namespace strata {

TokenStream::TokenStream(const Tokenizer& tok, const VocabMask& mask, const GenerationParams& p)
    : tok_(tok), mask_(mask), ignore_eos_(p.ignore_eos), sampler_(p.sampling), decoder_(tok), stop_(p.stop) {}

TokenStream::Token TokenStream::next(std::vector<float>& logits) {
  mask_.apply(logits);
  Token t;
  t.id = sampler_.next(logits);
  if (tok_.is_eos(t.id) && !ignore_eos_) {
    t.eos = true;
    return t;
  }
  t.text = stop_.push(decoder_.push(t.id));
  t.stopped = stop_.stopped();
  return t;
}

std::string TokenStream::flush() {
  if (stop_.stopped()) return {};
  return stop_.push(decoder_.flush()) + stop_.flush();
}

}  // namespace strata
