#include "cpu-kernels/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu-kernels/ops.h"

namespace strata {

namespace {

// Indices of the k largest values, best first, lowest index on ties.
std::vector<int64_t> top_indices(const std::vector<float>& v, int64_t k) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return v[a] > v[b]; });
  idx.resize(static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(v.size()))));
  return idx;
}

}  // namespace

namespace {

void score(const RouterParams& p, const float* logits, std::vector<float>& scores) {
  scores.assign(logits, logits + p.n_experts);
  switch (p.scoring) {
    case ScoringFunc::Sigmoid:
      for (float& s : scores) s = sigmoid(s);
      break;
    case ScoringFunc::Softmax:
      softmax(scores.data(), p.n_experts);
      break;
    case ScoringFunc::SqrtSoftplus:
      for (float& s : scores) s = std::sqrt(s > 20 ? s : std::log1p(std::exp(s)));
      break;
  }
}

void finish_weights(const RouterParams& p, float* weights, int64_t k) {
  float sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += weights[i];
  for (int64_t i = 0; i < k; ++i) {
    if (p.norm_topk_prob && sum > 0) weights[i] /= sum;
    weights[i] *= p.routed_scaling_factor;
  }
}

}  // namespace

void route_token(const RouterParams& p, const float* logits, const float* bias, int32_t* ids, float* weights) {
  const int64_t n = p.n_experts;
  std::vector<float> scores;
  score(p, logits, scores);
  std::vector<float> sel = scores;
  if (bias)
    for (int64_t e = 0; e < n; ++e) sel[e] += bias[e];

  if (p.n_group > 1) {
    const int64_t per = n / p.n_group;
    std::vector<float> gscore(static_cast<size_t>(p.n_group));
    for (int64_t g = 0; g < p.n_group; ++g) {
      std::vector<float> grp(sel.begin() + g * per, sel.begin() + (g + 1) * per);
      std::sort(grp.begin(), grp.end(), std::greater<>());
      gscore[g] = bias ? grp[0] + (per > 1 ? grp[1] : 0.0f) : grp[0];
    }
    std::vector<bool> keep(static_cast<size_t>(p.n_group), false);
    for (int64_t g : top_indices(gscore, p.topk_group)) keep[g] = true;
    for (int64_t e = 0; e < n; ++e)
      if (!keep[e / per]) sel[e] = -std::numeric_limits<float>::infinity();
  }

  const std::vector<int64_t> top = top_indices(sel, p.top_k);
  for (size_t i = 0; i < top.size(); ++i) {
    ids[i] = static_cast<int32_t>(top[i]);
    weights[i] = scores[top[i]];
  }
  finish_weights(p, weights, static_cast<int64_t>(top.size()));
}

void route_token_fixed(const RouterParams& p, const float* logits, const int32_t* ids, float* weights) {
  std::vector<float> scores;
  score(p, logits, scores);
  for (int64_t i = 0; i < p.top_k; ++i) weights[i] = scores[static_cast<size_t>(ids[i])];
  finish_weights(p, weights, p.top_k);
}


}  // namespace strata
