#include "runtime/generate/vocab_mask.h"

#include <limits>

#include "runtime/common/error.h"

namespace strata {

VocabMask::VocabMask(const Tokenizer& tok, int64_t vocab_rows) : ok_(static_cast<size_t>(vocab_rows), 0) {
  const int64_t known = static_cast<int64_t>(tok.vocab_size());
  for (int64_t id = 0; id < vocab_rows; ++id) {
    const bool ok = id < known && !tok.token_text(static_cast<int32_t>(id)).empty();
    ok_[static_cast<size_t>(id)] = ok;
    masked_ += !ok;
  }
  if (masked_ == vocab_rows) throw Error("the tokenizer has no token for any of the model's " +
                                         std::to_string(vocab_rows) + " vocabulary rows");
}

void VocabMask::apply(std::span<float> logits) const {
  if (masked_ == 0) return;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const size_t n = std::min(logits.size(), ok_.size());
  for (size_t i = 0; i < n; ++i)
    if (!ok_[i]) logits[i] = kNegInf;
}

}  // namespace strata
