#include "runtime/model/v4_compressor.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"

namespace strata {

Compressor::Compressor(CompressorWeights w, int64_t ratio, int64_t dim, float norm_eps, const Rope* rope,
                       Finish finish)
    : w_(std::move(w)),
      ratio_(ratio),
      dim_(dim),
      width_((ratio == 4 ? 2 : 1) * dim),
      overlap_(ratio == 4),
      norm_eps_(norm_eps),
      rope_(rope),
      finish_(std::move(finish)) {
  reset();
}

void Compressor::reset() {
  const size_t n = static_cast<size_t>(ratio_ * width_);
  cur_kv_.assign(n, 0.0f);
  cur_score_.assign(n, 0.0f);
  prev_kv_.assign(n, 0.0f);
  prev_score_.assign(n, 0.0f);
  has_prev_ = false;
  rows_.clear();
}

void Compressor::append(const float* x, int64_t n, int64_t first_pos) {
  if (n <= 0) return;
  std::vector<float> kv(static_cast<size_t>(n * width_)), sc(static_cast<size_t>(n * width_));
  linear(w_.wkv, x, n, kv.data());
  linear(w_.wgate, x, n, sc.data());
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = first_pos + t, i = pos % ratio_;
    std::copy_n(kv.data() + t * width_, width_, cur_kv_.data() + i * width_);
    for (int64_t c = 0; c < width_; ++c) cur_score_[i * width_ + c] = sc[t * width_ + c] + w_.ape[i * width_ + c];
    if (i == ratio_ - 1) complete_block(pos / ratio_);
  }
}

void Compressor::complete_block(int64_t j) {
  const int64_t D = dim_, r = ratio_;
  std::vector<float> row(static_cast<size_t>(D));
  // Entries pooled per dim: (kv, score) of the previous block's first half (overlap) and of
  // this block's own columns (the second half under overlap).
  const int64_t own = overlap_ ? D : 0;
  const bool use_prev = overlap_ && has_prev_;
  for (int64_t d = 0; d < D; ++d) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < r; ++i) {
      m = std::max(m, cur_score_[i * width_ + own + d]);
      if (use_prev) m = std::max(m, prev_score_[i * width_ + d]);
    }
    double num = 0, den = 0;
    for (int64_t i = 0; i < r; ++i) {
      const double e = std::exp(static_cast<double>(cur_score_[i * width_ + own + d]) - m);
      den += e;
      num += e * cur_kv_[i * width_ + own + d];
      if (use_prev) {
        const double ep = std::exp(static_cast<double>(prev_score_[i * width_ + d]) - m);
        den += ep;
        num += ep * prev_kv_[i * width_ + d];
      }
    }
    row[d] = static_cast<float>(num / den);
  }
  if (overlap_) {
    prev_kv_ = cur_kv_;
    prev_score_ = cur_score_;
    has_prev_ = true;
  }
  rms_norm(row.data(), w_.norm.data(), row.data(), 1, D, norm_eps_);
  rope_->apply_interleaved(row.data() + D - rope_->dim(), j * r);
  if (finish_) finish_(row.data());
  rows_.insert(rows_.end(), row.begin(), row.end());
}

}  // namespace strata
