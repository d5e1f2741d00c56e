#include "runtime/generate/perplexity.h"

#include <algorithm>
#include <cmath>
#include <span>
#include <string>

#include "runtime/common/error.h"

namespace strata {
namespace {

// Log-softmax of one row, in place (logits become log-probabilities).
void log_softmax(float* row, int64_t n) {
  float mx = row[0];
  for (int64_t v = 1; v < n; ++v) mx = std::max(mx, row[v]);
  double sum = 0;
  for (int64_t v = 0; v < n; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
  const auto lz = static_cast<float>(static_cast<double>(mx) + std::log(sum));
  for (int64_t v = 0; v < n; ++v) row[v] -= lz;
}

int64_t argmax(const float* row, int64_t n) { return std::max_element(row, row + n) - row; }

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto i = static_cast<size_t>(std::lround(q * static_cast<double>(sorted.size() - 1)));
  return sorted[std::min(i, sorted.size() - 1)];
}

// Mean and standard error of the mean.
std::pair<double, double> mean_err(double sum, double sum2, int64_t n) {
  const double mean = sum / static_cast<double>(n);
  const double var = n > 1 ? std::max(0.0, sum2 / static_cast<double>(n) - mean * mean) : 0.0;
  return {mean, n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0};
}

}  // namespace

PerplexityChunks perplexity_chunks(const std::vector<int32_t>& text_tokens, int32_t bos, const PerplexityOptions& o) {
  if (o.n_ctx < 4) throw Error("perplexity: a context of " + std::to_string(o.n_ctx) + " tokens; at least 4 are needed");
  const auto n = static_cast<int64_t>(text_tokens.size());
  if (n < 2 * o.n_ctx)
    throw Error("perplexity: the text has " + std::to_string(n) + " tokens; a context of " + std::to_string(o.n_ctx) +
                " needs at least " + std::to_string(2 * o.n_ctx) + " (give a longer text or a smaller -c)");
  PerplexityChunks ch;
  ch.n_ctx = o.n_ctx;
  ch.n_chunks = n / o.n_ctx;
  if (o.max_chunks > 0) ch.n_chunks = std::min(ch.n_chunks, o.max_chunks);
  ch.tokens.assign(text_tokens.begin(), text_tokens.begin() + ch.n_chunks * o.n_ctx);
  if (bos >= 0)
    for (int64_t c = 0; c < ch.n_chunks; ++c) ch.tokens[static_cast<size_t>(c * o.n_ctx)] = bos;
  return ch;
}

PerplexityStats perplexity(CausalLM& lm, const PerplexityChunks& ch, const PerplexityOptions& o, LogprobWriter* save,
                           LogprobReader* base, const std::function<void(int64_t, double)>& on_chunk) {
  const int64_t V = lm.config().vocab_size, n_ctx = ch.n_ctx, first = n_ctx / 2;
  if (base) {
    const LogprobHeader& h = base->header();
    if (h.n_vocab != V)
      throw Error(base->path().string() + ": a vocabulary of " + std::to_string(h.n_vocab) + " rows; the model has " +
                  std::to_string(V));
    if (h.n_ctx != n_ctx || h.n_chunks < ch.n_chunks || base->tokens().size() < ch.tokens.size() ||
        !std::equal(ch.tokens.begin(), ch.tokens.end(), base->tokens().begin()))
      throw Error(base->path().string() + ": its tokens are not this run's (the base ran " + std::to_string(h.n_chunks) +
                  " chunks of " + std::to_string(h.n_ctx) + "; this one " + std::to_string(ch.n_chunks) + " of " +
                  std::to_string(n_ctx) + "): use the same text, -c and tokenizer");
  }
  const int64_t batch = std::max<int64_t>(1, std::min(o.batch, n_ctx));
  PerplexityStats st;
  double nll = 0, nll2 = 0, base_nll = 0, kld = 0, kld2 = 0, dp2 = 0;
  int64_t same = 0;
  std::vector<double> klds;
  std::vector<float> logits, base_row(base ? static_cast<size_t>(V) : 0);
  for (int64_t c = 0; c < ch.n_chunks; ++c) {
    lm.reset();
    const int32_t* toks = ch.tokens.data() + c * n_ctx;
    for (int64_t p0 = 0; p0 < n_ctx; p0 += batch) {
      const int64_t nb = std::min(batch, n_ctx - p0);
      lm.forward(std::span<const int32_t>(toks + p0, static_cast<size_t>(nb)), logits, true);
      for (int64_t p = std::max(p0, first); p < std::min(p0 + nb, n_ctx - 1); ++p) {
        float* row = logits.data() + (p - p0) * V;
        log_softmax(row, V);
        const int32_t next = toks[p + 1];
        const double l = -static_cast<double>(row[next]);
        nll += l;
        nll2 += l * l;
        ++st.scored;
        if (save) save->row(row);
        if (base) {
          base->row(base_row.data());
          log_softmax(base_row.data(), V);  // renormalized after the f16 rounding: the KL stays >= 0
          double k = 0;
          for (int64_t v = 0; v < V; ++v) {
            const double pb = std::exp(static_cast<double>(base_row[v]));
            k += pb * (static_cast<double>(base_row[v]) - static_cast<double>(row[v]));
          }
          kld += k;
          kld2 += k * k;
          klds.push_back(k);
          base_nll -= base_row[next];
          same += argmax(row, V) == argmax(base_row.data(), V);
          const double dp = std::exp(static_cast<double>(row[next])) - std::exp(static_cast<double>(base_row[next]));
          dp2 += dp * dp;
        }
      }
    }
    ++st.chunks;
    if (on_chunk) on_chunk(c, std::exp(nll / static_cast<double>(st.scored)));
  }
  const auto [mean, err] = mean_err(nll, nll2, st.scored);
  st.mean_nll = mean;
  st.ppl = std::exp(mean);
  st.ppl_err = err * st.ppl;
  if (base) {
    KlStats k;
    const double n = static_cast<double>(st.scored);
    k.base_ppl = std::exp(base_nll / n);
    k.ln_ppl_ratio = mean - base_nll / n;
    const auto [km, ke] = mean_err(kld, kld2, st.scored);
    k.kld_mean = km;
    k.kld_err = ke;
    std::sort(klds.begin(), klds.end());
    k.kld_max = klds.empty() ? 0 : klds.back();
    k.kld_p999 = quantile(klds, 0.999);
    k.kld_p99 = quantile(klds, 0.99);
    k.kld_p90 = quantile(klds, 0.90);
    k.kld_median = quantile(klds, 0.5);
    k.same_top = static_cast<double>(same) / n;
    k.rms_dp = std::sqrt(dp2 / n);
    st.kl = k;
  }
  return st;
}

}  // namespace strata
