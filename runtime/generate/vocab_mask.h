// Which rows of a model's vocabulary may be generated. Real DeepSeek checkpoints have more
// embedding rows than tokens (129280 rows, 128815 tokens: padding for the matrix shapes); a
// padding row's logit is noise and its id decodes to nothing, so it is never sampled.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"

namespace strata {

class VocabMask {
 public:
  // Rows [0, vocab_rows) of the model; an id is allowed when the tokenizer has a token for it.
  VocabMask(const Tokenizer& tok, int64_t vocab_rows);
  // Sets the logits of rows with no token to -infinity (logits.size() == vocab_rows).
  void apply(std::span<float> logits) const;
  int64_t masked() const { return masked_; }  // rows with no token
  bool allowed(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < ok_.size() && ok_[static_cast<size_t>(id)]; }

 private:
  std::vector<uint8_t> ok_;
  int64_t masked_ = 0;
};

}  // namespace strata
