#include "cpu-kernels/mhc.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/ops.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"

namespace strata {
namespace {

// mix[t · rows + r] = (fn[r] · x_t) · rsqrt(mean(x_t²) + eps) for t < n <= 8, r < rows, x_t =
// vec(X_t) of hc·D values: f32 products (the published code's f32 linear), the n tokens against
// each row of fn at once (attn_scores_rows_f32: a row read once for them); split_rows: rows in
// parallel chunks (a row's sum is the same whichever chunk it is in), for a step of a few tokens.
void mixes(const HcParams& p, const HcView& w, const float* X, int64_t n, int64_t rows, bool split_rows,
           float* mix) {
  const int64_t d = p.hc * p.dim;
  const float* xs[8];
  const int nb = static_cast<int>(std::min<int64_t>(8, n));
  for (int t = 0; t < nb; ++t) xs[t] = X + t * d;
  const auto chunk = [&](int64_t r0, int64_t r1) {
    const float* fn = w.fn + r0 * d;
    attn_scores_rows_f32(xs, xs, nb, fn, d, d, fn, 0, 0, r1 - r0, mix + r0, rows);
  };
  if (split_rows) {
    run_in_compute_arena([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, rows, 4),
                        [&](const tbb::blocked_range<int64_t>& r) { chunk(r.begin(), r.end()); });
    });
  } else {
    chunk(0, rows);
  }
  for (int t = 0; t < nb; ++t) {
    const float r = static_cast<float>(
        1.0 / std::sqrt(static_cast<double>(dot_f32(xs[t], xs[t], d)) / static_cast<double>(d) + p.norm_eps));
    for (int64_t k = 0; k < rows; ++k) mix[t * rows + k] *= r;
  }
}

void combine(const HcParams& p, const float* pre, const float* X, float* u) {
  for (int64_t d = 0; d < p.dim; ++d) {
    float acc = 0;
    for (int64_t i = 0; i < p.hc; ++i) acc += pre[i] * X[i * p.dim + d];
    u[d] = acc;
  }
}

}  // namespace

void sinkhorn(float* comb, int64_t hc, int64_t iters, float eps) {
  auto normalize_rows = [&] {
    for (int64_t i = 0; i < hc; ++i) {
      float s = 0;
      for (int64_t j = 0; j < hc; ++j) s += comb[i * hc + j];
      for (int64_t j = 0; j < hc; ++j) comb[i * hc + j] /= s + eps;
    }
  };
  auto normalize_cols = [&] {
    for (int64_t j = 0; j < hc; ++j) {
      float s = 0;
      for (int64_t i = 0; i < hc; ++i) s += comb[i * hc + j];
      for (int64_t i = 0; i < hc; ++i) comb[i * hc + j] /= s + eps;
    }
  };
  for (int64_t i = 0; i < hc; ++i) {
    softmax(comb + i * hc, hc);
    for (int64_t j = 0; j < hc; ++j) comb[i * hc + j] += eps;
  }
  normalize_cols();
  for (int64_t it = 1; it < iters; ++it) {
    normalize_rows();
    normalize_cols();
  }
}

void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
            float* comb) {
  const int64_t hc = p.hc, D = p.dim, rows = (2 + hc) * hc;
  // Tokens in groups of 8 (the mixes' products), the groups in parallel.
  run_in_compute_arena([&] {
    tbb::parallel_for(int64_t{0}, (n + 7) / 8, [&](int64_t g) {
      const int64_t t0 = g * 8, nt = std::min<int64_t>(8, n - t0);
      const ScratchFloats m(static_cast<size_t>(nt * rows)), pre(static_cast<size_t>(hc));
      mixes(p, w, X + t0 * hc * D, nt, rows, n <= 8, m.data());
      for (int64_t t = t0; t < t0 + nt; ++t) {
        const float* mt = m.data() + (t - t0) * rows;
        float* pt = post + t * hc;
        float* ct = comb + t * hc * hc;
        for (int64_t i = 0; i < hc; ++i) {
          pre[i] = sigmoid(mt[i] * w.scale[0] + w.base[i]) + p.hc_eps;
          pt[i] = 2.0f * sigmoid(mt[hc + i] * w.scale[1] + w.base[hc + i]);
        }
        for (int64_t k = 0; k < hc * hc; ++k) ct[k] = mt[2 * hc + k] * w.scale[2] + w.base[2 * hc + k];
        sinkhorn(ct, hc, p.sinkhorn_iters, p.hc_eps);
        combine(p, pre.data(), X + t * hc * D, u + t * D);
      }
    });
  });
}

void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X, int64_t n) {
  const int64_t hc = p.hc, D = p.dim;
  run_in_compute_arena([&] {
    tbb::parallel_for(int64_t{0}, n, [&](int64_t t) {
      const ScratchFloats out(static_cast<size_t>(hc * D));
      const float* ft = f + t * D;
      const float* pt = post + t * hc;
      const float* ct = comb + t * hc * hc;
      float* xt = X + t * hc * D;
      for (int64_t j = 0; j < hc; ++j)
        for (int64_t d = 0; d < D; ++d) {
          float acc = pt[j] * ft[d];
          for (int64_t i = 0; i < hc; ++i) acc += ct[i * hc + j] * xt[i * D + d];
          out[j * D + d] = acc;
        }
      std::copy_n(out.data(), hc * D, xt);
    });
  });
}

void hc_head(const HcParams& p, const HcView& w, const float* X, float* u) {
  const ScratchFloats pre(static_cast<size_t>(p.hc));
  mixes(p, w, X, 1, p.hc, false, pre.data());
  for (int64_t i = 0; i < p.hc; ++i) pre[i] = sigmoid(pre[i] * w.scale[0] + w.base[i]) + p.hc_eps;
  combine(p, pre.data(), X, u);
}

}  // namespace strata
