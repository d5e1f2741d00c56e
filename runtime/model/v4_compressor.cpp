#include "runtime/model/v4_compressor.h"

#include <string>

#include "runtime/common/error.h"

namespace strata {

Compressor::Compressor(Device& dev, CompressorWeights w, int64_t ratio, int64_t dim, float norm_eps,
                       const Rope* rope, Finish finish, int64_t tokens, bool bf16_rows)
    : dev_(dev),
      w_(w),
      ratio_(ratio),
      dim_(dim),
      width_((ratio == 4 ? 2 : 1) * dim),
      overlap_(ratio == 4),
      bf16_(bf16_rows),
      norm_eps_(norm_eps),
      rope_(rope),
      finish_(std::move(finish)),
      capacity_(tokens / ratio) {
  const uint64_t block = static_cast<uint64_t>(ratio_ * width_) * sizeof(float);
  const std::string what = "a KV compressor's block (ratio " + std::to_string(ratio) + ")";
  cur_kv_ = dev.alloc(block, "KV cache", what);
  cur_score_ = dev.alloc(block, "KV cache", what);
  if (overlap_) {
    prev_kv_ = dev.alloc(block, "KV cache", what);
    prev_score_ = dev.alloc(block, "KV cache", what);
  }
  const uint64_t elem = bf16_ ? sizeof(uint16_t) : sizeof(float);
  rows_ = dev.alloc(static_cast<uint64_t>(std::max<int64_t>(capacity_, 1) * dim_) * elem, "KV cache",
                    "the compressed KV rows of " + std::to_string(tokens) + " tokens");
}

void Compressor::reset() {
  has_prev_ = false;
  n_rows_ = 0;  // the block slots are written before a block completes
}

void Compressor::append(const float* x, int64_t n, int64_t first_pos) {
  if (n <= 0) return;
  const Ops& ops = dev_.ops();
  DeviceScratch mem(dev_);
  float *kv = mem.get(n * width_), *sc = mem.get(n * width_);
  ops.linear(w_.wkv, x, n, kv);
  ops.linear(w_.wgate, x, n, sc);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = first_pos + t, i = pos % ratio_;
    ops.copy(f(cur_kv_) + i * width_, kv + t * width_, static_cast<uint64_t>(width_) * sizeof(float));
    ops.add(sc + t * width_, w_.ape + i * width_, f(cur_score_) + i * width_, width_);
    if (i == ratio_ - 1) complete_block(pos / ratio_);
  }
}

void Compressor::complete_block(int64_t j) {
  if (n_rows_ >= capacity_ || j != n_rows_)
    throw Error("KV compressor: block " + std::to_string(j) + " past its " + std::to_string(capacity_) + " rows");
  const Ops& ops = dev_.ops();
  const int64_t D = dim_;
  DeviceScratch mem(dev_);
  float* row = bf16_ ? mem.get(D) : f(rows_) + n_rows_ * D;
  // Entries pooled per dim: (kv, score) of the previous block's first half (overlap) and of
  // this block's own columns (the second half under overlap).
  const bool use_prev = overlap_ && has_prev_;
  ops.compress_pool(f(cur_kv_), f(cur_score_), use_prev ? f(prev_kv_) : nullptr, use_prev ? f(prev_score_) : nullptr,
                    ratio_, width_, overlap_ ? D : 0, D, row);
  if (overlap_) {
    const uint64_t block = static_cast<uint64_t>(ratio_ * width_) * sizeof(float);
    ops.copy(prev_kv_.data(), cur_kv_.data(), block);
    ops.copy(prev_score_.data(), cur_score_.data(), block);
    has_prev_ = true;
  }
  ops.rms_norm(row, w_.norm, row, 1, D, norm_eps_);
  ops.rope_at(*rope_, row + D - rope_->dim(), 1, 0, j * ratio_);
  if (finish_) finish_(ops, row);
  if (bf16_) ops.to_bf16(reinterpret_cast<uint16_t*>(rows_.data()) + n_rows_ * D, row, D);
  ++n_rows_;
}

}  // namespace strata
