// A loaded model that turns tokens into next-token logits, keeping its own KV cache for one
// sequence. One implementation per architecture; load_causal_lm picks it from the config.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "runtime/model/model_files.h"

namespace strata {

// How MLA attention is evaluated. Absorbed: scores against the cached latent directly (the
// decode form); Decompressed: keys and values expanded per head from the latent (the prefill
// form). Auto: decompressed for batches of more than one token, absorbed for single tokens.
enum class MlaMode { Auto, Absorbed, Decompressed };

struct ForwardOptions {
  MlaMode mla = MlaMode::Auto;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  // Tokens already in the cache (the position of the next token).
  virtual int64_t n_past() const = 0;
  // Clears the cache.
  virtual void reset() = 0;
  // Runs `tokens` at positions n_past().. as one batch and appends them to the cache. Writes
  // logits [tokens.size(), vocab] when all_logits, else the last position's [vocab].
  // Throws strata::Error for a token id outside the vocabulary.
  virtual void forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits,
                       const ForwardOptions& opts = {}) = 0;
};

// The model of m.config's architecture over m's weights (held by reference: m must outlive it).
std::unique_ptr<CausalLM> load_causal_lm(const ModelFiles& m);

}  // namespace strata
