// Perplexity and KL divergence of a model over a text, chunked and scored as llama.cpp's
// llama-perplexity does, so the two can be compared on one model file and one text:
// - the text is tokenized whole (BOS first when the tokenizer adds one) and cut into
//   floor(tokens / n_ctx) chunks of n_ctx tokens (at least two chunks' worth is required);
// - each chunk runs from an empty cache, its first token replaced by BOS (when the tokenizer
//   adds one);
// - in each chunk, the positions n_ctx / 2 .. n_ctx − 2 are scored: the negative log-likelihood
//   of the next token under the softmax over every vocabulary row;
// - PPL = exp(mean NLL), its uncertainty the standard error of the mean NLL times PPL.
// With a base file (logprob_file.h) the same positions are compared with a base model's
// distribution: KL(base ‖ this), top-token agreement and the change in the next token's
// probability.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "runtime/generate/logprob_file.h"
#include "runtime/model/causal_lm.h"

namespace strata {

struct PerplexityOptions {
  int64_t n_ctx = 512;     // tokens per chunk
  int64_t max_chunks = 0;  // 0: every whole chunk
  int64_t batch = 512;     // tokens per forward step within a chunk
};

// The token ids of every chunk, in order (n_chunks · n_ctx), BOS substituted.
struct PerplexityChunks {
  int64_t n_ctx = 0, n_chunks = 0;
  std::vector<int32_t> tokens;
};

// bos < 0: no substitution. Throws strata::Error when the text has fewer than 2 · n_ctx tokens
// (naming both) or n_ctx is below 4.
PerplexityChunks perplexity_chunks(const std::vector<int32_t>& text_tokens, int32_t bos, const PerplexityOptions& o);

struct KlStats {
  double base_ppl = 0, ln_ppl_ratio = 0;  // ln(PPL / PPL(base))
  double kld_mean = 0, kld_err = 0, kld_max = 0, kld_p999 = 0, kld_p99 = 0, kld_p90 = 0, kld_median = 0;
  double same_top = 0;  // share of positions whose most likely token is the base's
  double rms_dp = 0;    // RMS over positions of p(next token) − p_base(next token)
};

struct PerplexityStats {
  int64_t chunks = 0, scored = 0;
  double ppl = 0, ppl_err = 0, mean_nll = 0;
  std::optional<KlStats> kl;
};

// Runs the chunks through lm's own sequence (reset before each; its capacity must hold n_ctx).
// save: writes every scored position's log-probabilities (a base file). base: compares with
// one (its header must match the chunks, its tokens must equal them). on_chunk(i, running PPL)
// after each chunk.
PerplexityStats perplexity(CausalLM& lm, const PerplexityChunks& ch, const PerplexityOptions& o,
                           LogprobWriter* save = nullptr, LogprobReader* base = nullptr,
                           const std::function<void(int64_t, double)>& on_chunk = {});

}  // namespace strata
