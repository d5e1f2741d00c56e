#include "cpu-kernels/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu-kernels/ops.h"
#include "cpu-kernels/scratch.h"

namespace strata {

namespace {

// Indices of the k largest values of v[0, n) into idx, best first, lowest index on ties (a
// strict order: what a stable sort's first k would be; no temporary buffer).
void top_indices(const float* v, int64_t n, int64_t k, std::vector<int64_t>& idx) {
  idx.resize(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  const auto keep = static_cast<size_t>(std::min(k, n));
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep), idx.end(),
                    [&](int64_t a, int64_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(keep);
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
  const ScratchLease<std::vector<float>> scores_lease, sel_lease;
  const ScratchLease<std::vector<int64_t>> top_lease;
  std::vector<float>& scores = *scores_lease;
  std::vector<float>& sel = *sel_lease;
  std::vector<int64_t>& top = *top_lease;
  score(p, logits, scores);
  sel.assign(scores.begin(), scores.end());
  if (bias)
    for (int64_t e = 0; e < n; ++e) sel[e] += bias[e];

  if (p.n_group > 1) {
    const int64_t per = n / p.n_group;
    const ScratchLease<std::vector<float>> gscore_lease;
    std::vector<float>& gscore = *gscore_lease;
    gscore.resize(static_cast<size_t>(p.n_group));
    for (int64_t g = 0; g < p.n_group; ++g) {
      // The group's largest value, plus its second largest when biased (the two top experts).
      float m1 = -std::numeric_limits<float>::infinity(), m2 = m1;
      for (int64_t e = g * per; e < (g + 1) * per; ++e) {
        if (sel[e] > m1) {
          m2 = m1;
          m1 = sel[e];
        } else if (sel[e] > m2) {
          m2 = sel[e];
        }
      }
      gscore[g] = bias ? m1 + (per > 1 ? m2 : 0.0f) : m1;
    }
    top_indices(gscore.data(), p.n_group, p.topk_group, top);
    for (int64_t g = 0; g < p.n_group; ++g)
      if (std::find(top.begin(), top.end(), g) == top.end())
        for (int64_t e = g * per; e < (g + 1) * per; ++e) sel[e] = -std::numeric_limits<float>::infinity();
  }

  top_indices(sel.data(), n, p.top_k, top);
  for (size_t i = 0; i < top.size(); ++i) {
    ids[i] = static_cast<int32_t>(top[i]);
    weights[i] = scores[top[i]];
  }
  finish_weights(p, weights, static_cast<int64_t>(top.size()));
}

void route_token_fixed(const RouterParams& p, const float* logits, const int32_t* ids, float* weights) {
  const ScratchLease<std::vector<float>> lease;
  std::vector<float>& scores = *lease;
  score(p, logits, scores);
  for (int64_t i = 0; i < p.top_k; ++i) weights[i] = scores[static_cast<size_t>(ids[i])];
  finish_weights(p, weights, p.top_k);
}


}  // namespace strata
