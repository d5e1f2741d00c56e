#include "runtime/model/moe_ffn.h"

#include <algorithm>
#include <utility>

#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"

namespace strata {

void mlp_forward(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) {
  const int64_t inter = m.w1.rows;
  std::vector<float> g(static_cast<size_t>(n * inter)), u(static_cast<size_t>(n * inter));
  linear(m.w1, x, n, g.data());
  linear(m.w3, x, n, u.data());
  swiglu_limited(g.data(), u.data(), g.data(), n * inter, swiglu_limit);
  linear(m.w2, g.data(), n, out);
}

void add_routed_experts(const std::vector<Mlp>& experts, const float* x, int64_t n, int64_t d, const int32_t* ids,
                        const float* weights, int64_t top_k, float* out, float swiglu_limit) {
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(experts.size());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < top_k; ++j)
      if (weights[t * top_k + j] != 0)
        by_expert[static_cast<size_t>(ids[t * top_k + j])].push_back({t, weights[t * top_k + j]});
  std::vector<float> xs, ys;
  for (size_t e = 0; e < experts.size(); ++e) {
    const auto& toks = by_expert[e];
    if (toks.empty()) continue;
    const int64_t m = static_cast<int64_t>(toks.size());
    xs.resize(static_cast<size_t>(m * d));
    ys.assign(static_cast<size_t>(m * d), 0.0f);
    for (int64_t i = 0; i < m; ++i) std::copy_n(x + toks[i].first * d, d, xs.data() + i * d);
    mlp_forward(experts[e], xs.data(), m, ys.data(), swiglu_limit);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < d; ++j) out[toks[i].first * d + j] += toks[i].second * ys[i * d + j];
  }
}

}  // namespace strata
