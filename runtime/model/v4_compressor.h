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
//
// Its state (the block being filled, the previous block, the rows) lives in the memory of the
// device that runs the layer's attention; it computes through that device's ops. The rows are
// f32, or bf16 (--cache-type-k bf16: each row made in f32, then rounded into the cache).
#pragma once

#include <cstdint>
#include <functional>

#include "runtime/backend/device.h"

namespace strata {

struct CompressorWeights {
  WeightView wkv, wgate;
  const float* ape = nullptr;   // [ratio, c·D], in the device's memory
  const float* norm = nullptr;  // [D]
};

class Compressor {
 public:
  using Finish = std::function<void(const Ops& ops, float* row)>;
  // Room in dev's memory for the rows of a sequence of `tokens` tokens.
  Compressor(Device& dev, CompressorWeights w, int64_t ratio, int64_t dim, float norm_eps, const Rope* rope,
             Finish finish, int64_t tokens, bool bf16_rows = false);

  // Feeds n new tokens x [n, hidden] (device memory) at positions first_pos.. (consecutive
  // with earlier calls); completes the rows whose blocks end among them. Runs where the
  // device's ops run (its queue).
  void append(const float* x, int64_t n, int64_t first_pos);
  int64_t ratio() const { return ratio_; }
  int64_t dim() const { return dim_; }
  int64_t n_rows() const { return n_rows_; }
  bool bf16_rows() const { return bf16_; }
  // The rows as stored: f32 (rows(), row(j)) or bf16 (row_bf16(j)).
  const float* row(int64_t j) const { return rows() + j * dim_; }
  const float* rows() const { return bf16_ ? nullptr : reinterpret_cast<const float*>(rows_.data()); }
  const uint16_t* row_bf16(int64_t j) const {
    return bf16_ ? reinterpret_cast<const uint16_t*>(rows_.data()) + j * dim_ : nullptr;
  }
  void reset();

 private:
  void complete_block(int64_t j);
  float* f(const DeviceBuffer& b) const { return reinterpret_cast<float*>(b.data()); }

  Device& dev_;
  CompressorWeights w_;
  int64_t ratio_, dim_, width_;
  bool overlap_, bf16_;
  float norm_eps_;
  const Rope* rope_;
  Finish finish_;
  DeviceBuffer cur_kv_, cur_score_;    // [ratio, width]: the block being filled
  DeviceBuffer prev_kv_, prev_score_;  // [ratio, width]: the last completed block
  bool has_prev_ = false;
  DeviceBuffer rows_;  // [capacity, dim], f32 or bf16
  int64_t n_rows_ = 0, capacity_ = 0;
};

}  // namespace strata
