// Engram table geometry: the per-head prime moduli of the n-gram hash.
#include <set>

#include "runtime/common/error.h"
#include "runtime/config/model_config.h"

namespace strata {

namespace {

bool is_prime(int64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  if (n % 3 == 0) return n == 3;
  for (int64_t d = 5; d <= n / d; d += 6)
    if (n % d == 0 || n % (d + 2) == 0) return false;
  return true;
}

}  // namespace

std::map<int, std::vector<int64_t>> engram_head_sizes(const EngramConfig& e) {
  if (e.max_ngram_size < 2 || static_cast<int64_t>(e.vocab_sizes.size()) != e.max_ngram_size - 1 ||
      e.n_head_per_ngram <= 0)
    throw Error("engram: inconsistent config (engram_vocab_size needs max_ngram_size - 1 entries)");
  std::set<int64_t> used;
  std::map<int, std::vector<int64_t>> out;
  for (int layer : e.layer_ids) {
    std::vector<int64_t>& sizes = out[layer];
    for (int order = 2; order <= e.max_ngram_size; ++order) {
      // Each head takes the next prime above the previous one that no head has used yet.
      int64_t start = e.vocab_sizes[static_cast<size_t>(order - 2)] - 1;
      for (int h = 0; h < e.n_head_per_ngram; ++h) {
        int64_t p = start + 1;
        while (!is_prime(p) || used.count(p)) ++p;
        used.insert(p);
        sizes.push_back(p);
        start = p;
      }
    }
  }
  return out;
}

}  // namespace strata
