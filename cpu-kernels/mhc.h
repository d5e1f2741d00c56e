// Manifold-constrained hyper-connections (mHC, DeepSeek-V4): the residual stream is hc
// parallel streams X [hc, D]. Around each sublayer F (attention, FFN):
//   m    = (fn · vec(X)) · rsqrt(mean(vec(X)²) + norm_eps)                 fn [(2+hc)·hc, hc·D]
//   pre  = sigmoid(m[0:hc]·scale[0] + base[0:hc]) + hc_eps
//   post = 2·sigmoid(m[hc:2hc]·scale[1] + base[hc:2hc])
//   comb = Sinkhorn(m[2hc:]·scale[2] + base[2hc:])  as [hc][hc], row-major
//   u = Σ_i pre_i X_i;   X'_j = post_j · F(u) + Σ_i comb[i][j] · X_i
// Sinkhorn: softmax along each row, + hc_eps; divide each column by (its sum + hc_eps); then
// iters-1 rounds of row- then column-normalization (each dividing by sum + hc_eps). The
// result is applied TRANSPOSED (X'_j sums over the first index i).
// The head mixes the streams once more, without Sinkhorn:
//   pre = sigmoid(m·scale[0] + base) + hc_eps  (fn [hc, hc·D]),  u = Σ_i pre_i X_i.
#pragma once

#include <cstdint>
#include <vector>

namespace strata {

struct HcWeights {
  std::vector<float> fn, base, scale;  // [rows, hc·D], [rows], [3] (head: [1])
};

// The same weights wherever they are (host vectors, or their copies in a device's memory).
struct HcView {
  const float* fn = nullptr;
  const float* base = nullptr;
  const float* scale = nullptr;
  HcView() = default;
  HcView(const float* f, const float* b, const float* s) : fn(f), base(b), scale(s) {}
  HcView(const HcWeights& w)
      : fn(w.fn.data()), base(w.base.data()), scale(w.scale.data()) {}  // NOLINT: a view
};

struct HcParams {
  int64_t hc = 0, dim = 0, sinkhorn_iters = 0;
  float norm_eps = 1e-6f, hc_eps = 1e-6f;
};

// In place on comb [hc][hc] (the scaled and biased logits on entry).
void sinkhorn(float* comb, int64_t hc, int64_t iters, float eps);

// n tokens: X [n, hc, D] -> u [n, D], post [n, hc], comb [n, hc·hc] (tokens in parallel).
void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
            float* comb);
// n tokens: X [n, hc, D] updated in place to post_j·f + Σ_i comb[i][j]·X_i (f [n, D]).
void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X, int64_t n);
// One token: X [hc, D] -> u [D] with the head's pre weights.
void hc_head(const HcParams& p, const HcView& w, const float* X, float* u);

}  // namespace strata
