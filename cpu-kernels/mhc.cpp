#include "cpu-kernels/mhc.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu-kernels/ops.h"
#include "cpu-kernels/scratch.h"

namespace strata {
namespace {

// mix[r] = (fn[r] · x) · rsqrt(mean(x²) + eps) for r < rows, x = vec(X) of hc·D values.
void mixes(const HcParams& p, const HcWeights& w, const float* X, int64_t rows, float* mix) {
  const int64_t n = p.hc * p.dim;
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(X[i]) * X[i];
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + p.norm_eps);
  for (int64_t k = 0; k < rows; ++k) {
    const float* f = w.fn.data() + k * n;
    double acc = 0;
    for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(f[i]) * X[i];
    mix[k] = static_cast<float>(acc * r);
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

void hc_pre(const HcParams& p, const HcWeights& w, const float* X, float* u, float* post, float* comb) {
  const int64_t hc = p.hc, rows = (2 + hc) * hc;
  const ScratchFloats m(static_cast<size_t>(rows)), pre(static_cast<size_t>(hc));
  mixes(p, w, X, rows, m.data());
  for (int64_t i = 0; i < hc; ++i) {
    pre[i] = sigmoid(m[i] * w.scale[0] + w.base[i]) + p.hc_eps;
    post[i] = 2.0f * sigmoid(m[hc + i] * w.scale[1] + w.base[hc + i]);
  }
  for (int64_t k = 0; k < hc * hc; ++k) comb[k] = m[2 * hc + k] * w.scale[2] + w.base[2 * hc + k];
  sinkhorn(comb, hc, p.sinkhorn_iters, p.hc_eps);
  combine(p, pre.data(), X, u);
}

void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X) {
  const int64_t hc = p.hc, D = p.dim;
  const ScratchFloats out(static_cast<size_t>(hc * D));
  for (int64_t j = 0; j < hc; ++j)
    for (int64_t d = 0; d < D; ++d) {
      float acc = post[j] * f[d];
      for (int64_t i = 0; i < hc; ++i) acc += comb[i * hc + j] * X[i * D + d];
      out[j * D + d] = acc;
    }
  std::copy_n(out.data(), hc * D, X);
}

void hc_head(const HcParams& p, const HcWeights& w, const float* X, float* u) {
  const ScratchFloats pre(static_cast<size_t>(p.hc));
  mixes(p, w, X, p.hc, pre.data());
  for (int64_t i = 0; i < p.hc; ++i) pre[i] = sigmoid(pre[i] * w.scale[0] + w.base[i]) + p.hc_eps;
  combine(p, pre.data(), X, u);
}

}  // namespace strata
