// DeepSeek-V4's attention cores (gpu_ops.h): attention with a sink logit over gathered keys,
// the compressed-row indexer's pick, the compressor's pooling. CPU twins:
// cpu-kernels/v4_attention.cpp (sink_attention, index_pick, compress_pool). Keys and compressed
// rows are f32, or bf16 (--cache-type-k bf16) widened to f32 as they are read.
#include "gpu-kernels/cuda_util.cuh"
#include "gpu-kernels/op_workspace.h"

namespace strata::gpu {
namespace {

// Block per head: scores (a warp per key), the softmax with the sink, then the weighted sum.
template <class K>
__global__ void sink_kernel(const float* q, const K* const* keys, int64_t nk, const float* sink, int64_t D,
                            float scale, float* out, float* scores) {
  __shared__ float red[32];
  const int64_t h = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const float* qh = q + h * D;
  float* sc = scores + h * nk;
  for (int64_t i = warp; i < nk; i += warps) {
    const K* k = keys[i];
    float acc = 0.f;
    for (int64_t d = lane; d < D; d += 32) acc = fmaf(qh[d], widen(k[d]), acc);
    acc = warp_sum(acc);
    if (lane == 0) sc[i] = acc * scale;
  }
  __syncthreads();
  float m = sink[h];
  for (int64_t i = threadIdx.x; i < nk; i += blockDim.x) m = fmaxf(m, sc[i]);
  m = block_max(m, red);
  float den = 0.f;
  for (int64_t i = threadIdx.x; i < nk; i += blockDim.x) {
    const float e = expf(sc[i] - m);
    sc[i] = e;
    den += e;
  }
  den = block_sum(den, red) + expf(sink[h] - m);  // block_sum's barriers publish sc too
  const float inv = 1.0f / den;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int64_t i = 0; i < nk; ++i) acc = fmaf(sc[i], widen(keys[i][d]), acc);
    out[h * D + d] = acc * inv;
  }
}

// Thread per (t, row): the row's score for token t, or -inf past the rows t sees.
template <class K>
__global__ void pick_scores_kernel(const float* q, const float* w, const K* keys, int64_t n,
                                   int64_t first_pos, int64_t ratio, int64_t nh, int64_t hd, float wscale,
                                   int64_t max_rows, float* scores) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * max_rows) return;
  const int64_t t = i / max_rows, j = i % max_rows;
  if (j >= (first_pos + t + 1) / ratio) {
    scores[i] = -INFINITY;
    return;
  }
  const K* k = keys + j * hd;
  float acc = 0.f;
  for (int64_t h = 0; h < nh; ++h) {
    const float* qh = q + (t * nh + h) * hd;
    float d = 0.f;
    for (int64_t c = 0; c < hd; ++c) d = fmaf(qh[c], widen(k[c]), d);
    acc += fmaxf(d, 0.f) * w[t * nh + h] * wscale;
  }
  scores[i] = isnan(acc) ? -INFINITY : acc;  // a NaN would rank beside every row and leave a slot unwritten
}

// Thread per (t, row): its rank among the rows t sees (higher score first, the earlier row on
// ties) places it in picked when within top_k.
__global__ void pick_rank_kernel(const float* scores, int64_t n, int64_t first_pos, int64_t ratio, int64_t top_k,
                                 int64_t max_rows, int64_t* picked, int64_t* count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * max_rows) return;
  const int64_t t = i / max_rows, j = i % max_rows, rows = (first_pos + t + 1) / ratio;
  if (j == 0) count[t] = rows < top_k ? rows : top_k;
  if (j >= rows) return;
  const float* row = scores + t * max_rows;
  const float me = row[j];
  int64_t rank = 0;
  for (int64_t o = 0; o < rows && rank < top_k; ++o) rank += row[o] > me || (row[o] == me && o < j);
  if (rank < top_k) picked[t * top_k + rank] = j;
}

// Thread per output dim.
__global__ void pool_kernel(const float* kv, const float* score, const float* prev_kv, const float* prev_score,
                            int64_t ratio, int64_t width, int64_t own, int64_t D, float* out) {
  const int64_t d = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float m = -INFINITY;
  for (int64_t i = 0; i < ratio; ++i) {
    m = fmaxf(m, score[i * width + own + d]);
    if (prev_score) m = fmaxf(m, prev_score[i * width + d]);
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < ratio; ++i) {
    const double e = exp(static_cast<double>(score[i * width + own + d]) - m);
    den += e;
    num += e * kv[i * width + own + d];
    if (prev_score) {
      const double ep = exp(static_cast<double>(prev_score[i * width + d]) - m);
      den += ep;
      num += ep * prev_kv[i * width + d];
    }
  }
  out[d] = static_cast<float>(num / den);
}

template <class K>
void sink_attention_of(const float* q, const K* const* keys, int64_t nk, const float* sink, int64_t H,
                       int64_t D, float scale, float* out, void* work, Stream s) {
  if (H <= 0) return;
  sink_kernel<K><<<static_cast<unsigned>(H), 256, 0, cu(s)>>>(q, keys, nk, sink, D, scale, out,
                                                              static_cast<float*>(work));
  check_launch("sink_attention");
}

template <class K>
void index_pick_of(const float* q, const float* w, const K* keys, int64_t n, int64_t first_pos, int64_t ratio,
                   int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count,
                   void* work, Stream s) {
  if (n <= 0) return;
  const int64_t max_rows = (first_pos + n) / ratio, cells = n * (max_rows > 0 ? max_rows : 1);
  if (max_rows == 0) {  // no token sees a compressed row yet: every count is 0
    memset_zero(count, static_cast<uint64_t>(n) * sizeof(int64_t), s);
    return;
  }
  float* scores = static_cast<float*>(work);
  pick_scores_kernel<K><<<blocks_for(cells, 256), 256, 0, cu(s)>>>(q, w, keys, n, first_pos, ratio, nh, hd,
                                                                   wscale, max_rows, scores);
  check_launch("index_pick scores");
  pick_rank_kernel<<<blocks_for(cells, 256), 256, 0, cu(s)>>>(scores, n, first_pos, ratio, top_k, max_rows, picked,
                                                              count);
  check_launch("index_pick rank");
}

}  // namespace

void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H,
                    int64_t D, float scale, float* out, void* work, Stream s) {
  sink_attention_of(q, keys, nk, sink, H, D, scale, out, work, s);
}

void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                    int64_t D, float scale, float* out, void* work, Stream s) {
  sink_attention_of(q, keys, nk, sink, H, D, scale, out, work, s);
}

void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos,
                int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                int64_t* count, void* work, Stream s) {
  index_pick_of(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count, work, s);
}

void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                int64_t* count, void* work, Stream s) {
  index_pick_of(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count, work, s);
}

void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                   int64_t width, int64_t own, int64_t D, float* out, Stream s) {
  if (D <= 0) return;
  pool_kernel<<<blocks_for(D, 128), 128, 0, cu(s)>>>(kv, score, prev_kv, prev_score, ratio, width, own, D, out);
  check_launch("compress_pool");
}

}  // namespace strata::gpu
