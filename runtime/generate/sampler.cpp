#include "runtime/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace strata {

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
  if (!(p.temperature >= 0)) throw std::invalid_argument("temperature must be >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) throw std::invalid_argument("top-p must be in (0, 1]");
  if (p.top_k < 0) throw std::invalid_argument("top-k must be >= 0");
}

int32_t Sampler::next(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("sampler: no logits");
  if (p_.temperature == 0)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());

  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  size_t k = p_.top_k > 0 ? std::min<size_t>(static_cast<size_t>(p_.top_k), ids.size()) : ids.size();
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  ids.resize(k);
  std::vector<double> prob(k);
  const double top = logits[static_cast<size_t>(ids[0])];
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += prob[i] = std::exp((logits[static_cast<size_t>(ids[i])] - top) / p_.temperature);
  size_t keep = k;
  double acc = 0;
  for (size_t i = 0; i < k; ++i) {
    acc += prob[i] / sum;
    if (acc >= p_.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<size_t> pick(prob.begin(), prob.begin() + static_cast<std::ptrdiff_t>(keep));
  return ids[pick(rng_)];
}

}  // namespace strata
