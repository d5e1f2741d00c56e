// The device scratch each GPU op of gpu_ops.h takes for one call, in plain C++: the CUDA
// backend sizes its buffers with them, the simulated GPU takes the same (so it runs a CUDA
// device's memory plan), and the planner's step workspace (runtime/model/device_workspace.h)
// bounds a step by them.
#pragma once

#include <cstdint>

#include "cpu-kernels/mla_attention.h"

namespace strata::gpu {

// MLA attention takes its queries in chunks whose score rows, latent queries and latent sums
// stay within this many floats (at least one token a chunk).
constexpr int64_t kMlaScoreFloats = int64_t{8} << 20;

inline int64_t mla_chunk_tokens(int64_t H, int64_t n_ctx, int64_t dl, int64_t n) {
  const int64_t per = H * (n_ctx + 2 * dl);
  const int64_t c = kMlaScoreFloats / (per > 0 ? per : 1);
  return c < 1 ? 1 : c > n ? n : c;
}

inline uint64_t mla_workspace_bytes(const MlaShape& sh, int64_t n, int64_t n_ctx) {
  const int64_t chunk = mla_chunk_tokens(sh.heads, n_ctx, sh.kv_lora, n) * sh.heads * (n_ctx + 2 * sh.kv_lora);
  return static_cast<uint64_t>(chunk) * sizeof(float) + 256;
}

inline uint64_t index_topk_workspace_bytes(int64_t n, int64_t n_ctx) {
  return static_cast<uint64_t>(n * n_ctx) * sizeof(float) + 256;
}

inline uint64_t sink_attention_workspace_bytes(int64_t H, int64_t nk) {
  return static_cast<uint64_t>(H * (nk > 0 ? nk : 1)) * sizeof(float) + 256;
}

inline uint64_t index_pick_workspace_bytes(int64_t n, int64_t first_pos, int64_t ratio) {
  const int64_t rows = (first_pos + n) / ratio;
  return static_cast<uint64_t>(n * (rows > 0 ? rows : 1)) * sizeof(float) + 256;
}

// Products of at least kBlasMinTokens tokens go through cuBLAS where it loads (blas.cpp): the
// weights decoded to f32 in chunks of blas_chunk_rows rows (at most kBlasChunkFloats floats).
constexpr int64_t kBlasMinTokens = 128;
constexpr int64_t kBlasChunkFloats = int64_t{4} << 20;

inline int64_t blas_chunk_rows(int64_t cols) {
  const int64_t r = kBlasChunkFloats / (cols > 0 ? cols : 1);
  return r < 1 ? 1 : r;
}

// The chunk buffer a product of n tokens over rows nr of `cols` takes (none below kBlasMinTokens).
inline uint64_t linear_workspace_bytes(int64_t n, int64_t nr, int64_t cols) {
  if (n < kBlasMinTokens || nr <= 0) return 0;
  const int64_t rows = nr < blas_chunk_rows(cols) ? nr : blas_chunk_rows(cols);
  return static_cast<uint64_t>(rows * cols) * sizeof(float);
}

// mHC (hc_pre, hc_head): at most this many streams (and so mix rows (2 + hc)·hc); a token's
// mixes are summed over column slices of 512 values, each slice's rows and sum of squares kept.
constexpr int64_t kHcMaxStreams = 6;
constexpr int64_t kHcMaxRows = (2 + kHcMaxStreams) * kHcMaxStreams;

inline int hc_mix_slices(int64_t K) {
  const int64_t s = (K + 511) / 512;
  return static_cast<int>(s < 1 ? 1 : s > 128 ? 128 : s);
}

inline uint64_t hc_workspace_bytes(int64_t n, int64_t hc, int64_t D) {
  const int64_t rows = (2 + hc) * hc;
  return static_cast<uint64_t>((n > 0 ? n : 1) * hc_mix_slices(hc * D) * (rows + 1)) * sizeof(float) + 256;
}

// A SwiGLU MLP's gate and up activations, n tokens of `inter`.
inline uint64_t mlp_workspace_bytes(int64_t n, int64_t inter) {
  return 2 * static_cast<uint64_t>(n * inter) * sizeof(float);
}

}  // namespace strata::gpu
