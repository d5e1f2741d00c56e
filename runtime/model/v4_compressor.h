// DeepSeek-V4's KV compressor: every `ratio` consecutive tokens become one compressed row by
// gated softmax pooling, kept as a real cache (a row is made once, when its block completes).
//   kv = wkv(x), score = wgate(x) + ape[pos mod ratio]       (width c·D, c = 2 when ratio == 4)
//   ratio != 4: row j = Σ_{tokens of block j} softmax_tokens(score) ⊙ kv       (per dim)
//   ratio == 4 (overlapped): the softmax runs over 2·ratio entries per dim — the first D
//     columns of block j-1's tokens (none for j = 0) and the last D columns of block j's.
//   then row = norm(row) (RMSNorm), RoPE on its last rope dims at position j·ratio, and a
//   finishing step (the attention's FP8 quantize-dequantize of the non-rope dims, or the
//   indexer's Hadamard rotation + FP4 quantize-dequantize), done by the caller's `finish`.
// Row j exists for a query at position t when (j + 1)·ratio <= t + 1.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "cpu-kernels/rope.h"
#include "cpu-kernels/weight_view.h"

namespace strata {

struct CompressorWeights {
  WeightView wkv, wgate;
  std::vector<float> ape;   // [ratio, c·D]
  std::vector<float> norm;  // [D]
};

class Compressor {
 public:
  using Finish = std::function<void(float* row)>;
  Compressor(CompressorWeights w, int64_t ratio, int64_t dim, float norm_eps, const Rope* rope, Finish finish);

  // Feeds n new tokens x [n, hidden] at positions first_pos.. (consecutive with earlier calls);
  // completes the rows whose blocks end among them.
  void append(const float* x, int64_t n, int64_t first_pos);
  int64_t ratio() const { return ratio_; }
  int64_t dim() const { return dim_; }
  int64_t n_rows() const { return static_cast<int64_t>(rows_.size()) / dim_; }
  const float* row(int64_t j) const { return rows_.data() + j * dim_; }
  void reset();
  // Room for the rows of a sequence of `tokens` tokens, so that append never reallocates.
  void reserve_tokens(int64_t tokens) { rows_.reserve(static_cast<size_t>(tokens / ratio_ * dim_)); }

 private:
  void complete_block(int64_t j);

  CompressorWeights w_;
  int64_t ratio_, dim_, width_;
  bool overlap_;
  float norm_eps_;
  const Rope* rope_;
  Finish finish_;
  std::vector<float> cur_kv_, cur_score_;    // [ratio, width]: the block being filled
  std::vector<float> prev_kv_, prev_score_;  // [ratio, width]: the last completed block
  bool has_prev_ = false;
  std::vector<float> rows_;                  // [n_rows, dim]
};

}  // namespace strata
