#include "cpu-kernels/v4_attention.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"

namespace strata {

void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H, int64_t D,
                    float scale, float* out) {
  run_in_compute_arena([&] {
    tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
      const ScratchFloats scores(static_cast<size_t>(nk));
      const float* qh = q + h * D;
      float m = sink[h];
      for (int64_t i = 0; i < nk; ++i) {
        scores[i] = dot_f32(qh, keys[i], D) * scale;
        m = std::max(m, scores[i]);
      }
      double den = std::exp(static_cast<double>(sink[h]) - m);
      for (int64_t i = 0; i < nk; ++i) {
        scores[i] = std::exp(scores[i] - m);
        den += scores[i];
      }
      float* oh = out + h * D;
      std::fill(oh, oh + D, 0.0f);
      for (int64_t i = 0; i < nk; ++i) axpy_f32(static_cast<float>(scores[i] / den), keys[i], oh, D);
    });
  });
}

void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count) {
  const ScratchLease<std::vector<float>> score_lease;
  const ScratchLease<std::vector<int64_t>> order_lease;
  std::vector<float>& score = *score_lease;
  std::vector<int64_t>& order = *order_lease;
  for (int64_t t = 0; t < n; ++t) {
    const float* qt = q + t * nh * hd;
    const float* wt = w + t * nh;
    const int64_t rows = (first_pos + t + 1) / ratio;
    reserve_geometric(score, static_cast<size_t>(rows));
    reserve_geometric(order, static_cast<size_t>(rows));
    score.assign(static_cast<size_t>(rows), 0.0f);
    for (int64_t j = 0; j < rows; ++j) {
      const float* k = keys + j * hd;
      float acc = 0;
      for (int64_t h = 0; h < nh; ++h) acc += std::max(dot_f32(qt + h * hd, k, hd), 0.0f) * wt[h] * wscale;
      score[static_cast<size_t>(j)] = acc;
    }
    order.resize(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    count[t] = std::min(rows, top_k);
    // The count highest scores, best first, the earlier row on ties (a stable sort's first
    // count, in its order; no temporary buffer).
    std::partial_sort(order.begin(), order.begin() + count[t], order.end(),
                      [&](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
    std::copy_n(order.begin(), count[t], picked + t * top_k);
  }
}

void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                   int64_t width, int64_t own, int64_t D, float* out) {
  for (int64_t d = 0; d < D; ++d) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < ratio; ++i) {
      m = std::max(m, score[i * width + own + d]);
      if (prev_score) m = std::max(m, prev_score[i * width + d]);
    }
    double num = 0, den = 0;
    for (int64_t i = 0; i < ratio; ++i) {
      const double e = std::exp(static_cast<double>(score[i * width + own + d]) - m);
      den += e;
      num += e * kv[i * width + own + d];
      if (prev_score) {
        const double ep = std::exp(static_cast<double>(prev_score[i * width + d]) - m);
        den += ep;
        num += ep * prev_kv[i * width + d];
      }
    }
    out[d] = static_cast<float>(num / den);
  }
}

}  // namespace strata
