// mHC hyper-connections on the device (gpu_ops.h: hc_pre, hc_post, hc_head). CPU twin:
// cpu-kernels/mhc.cpp. The mixes m = fn · vec(X) of a token are split over column slices (a
// block each, partial sums in the work buffer), then a block per token adds the slices, takes
// the norm, the gates and Sinkhorn, and mixes the streams.
#include "gpu-kernels/cuda_util.cuh"
#include "gpu-kernels/op_workspace.h"

namespace strata::gpu {
namespace {

constexpr int kThreads = 256;

// Block (t, s): over columns [s·per, (s+1)·per) of token t's K = hc·D values, the dots of
// every row of fn and the sum of squares: part[(t·S + s)·(rows + 1) + r] (r = rows: squares).
__global__ void mix_parts_kernel(const float* fn, const float* X, int64_t K, int rows, int64_t per,
                                 float* part) {
  __shared__ float red[kHcMaxRows + 1][kThreads / 32];
  const int64_t t = blockIdx.x, s = blockIdx.y, S = gridDim.y;
  const float* x = X + t * K;
  float acc[kHcMaxRows + 1];
#pragma unroll
  for (int r = 0; r <= kHcMaxRows; ++r) acc[r] = 0.f;
  const int64_t c1 = min(K, (s + 1) * per);
  for (int64_t c = s * per + threadIdx.x; c < c1; c += blockDim.x) {
    const float v = x[c];
#pragma unroll
    for (int r = 0; r < kHcMaxRows; ++r)
      if (r < rows) acc[r] = fmaf(fn[r * K + c], v, acc[r]);
    acc[kHcMaxRows] = fmaf(v, v, acc[kHcMaxRows]);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
  for (int r = 0; r <= kHcMaxRows; ++r) {
    if (r < rows || r == kHcMaxRows) {
      const float v = warp_sum(acc[r]);
      if (lane == 0) red[r][warp] = v;
    }
  }
  __syncthreads();
  for (int r = threadIdx.x; r <= rows; r += blockDim.x) {
    const int src = r == rows ? kHcMaxRows : r;
    float v = 0.f;
    for (int w = 0; w < warps; ++w) v += red[src][w];
    part[(t * S + s) * (rows + 1) + r] = v;
  }
}

// Sinkhorn of one token's comb [hc][hc] in place (cpu-kernels/mhc.cpp: sinkhorn), by one thread.
__device__ void sinkhorn_one(float* c, int hc, int64_t iters, float eps) {
  for (int i = 0; i < hc; ++i) {
    float* row = c + i * hc;
    float m = -INFINITY;
    for (int j = 0; j < hc; ++j) m = fmaxf(m, row[j]);
    double sum = 0;
    for (int j = 0; j < hc; ++j) {
      row[j] = isinf(m) && m < 0 ? 0.f : expf(row[j] - m);
      sum += row[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int j = 0; j < hc; ++j) row[j] = (isinf(m) && m < 0 ? 0.f : row[j] * inv) + eps;
  }
  auto cols = [&] {
    for (int j = 0; j < hc; ++j) {
      float s = 0;
      for (int i = 0; i < hc; ++i) s += c[i * hc + j];
      for (int i = 0; i < hc; ++i) c[i * hc + j] /= s + eps;
    }
  };
  cols();
  for (int64_t it = 1; it < iters; ++it) {
    for (int i = 0; i < hc; ++i) {
      float s = 0;
      for (int j = 0; j < hc; ++j) s += c[i * hc + j];
      for (int j = 0; j < hc; ++j) c[i * hc + j] /= s + eps;
    }
    cols();
  }
}

// Block per token: the mixes from S slices, then pre (and with post / comb: post and Sinkhorn),
// then u = Σ_i pre_i X_i.
__global__ void mix_finish_kernel(HcParams p, HcView w, const float* X, const float* part, int S, int rows,
                                  float* u, float* post, float* comb) {
  __shared__ float m[kHcMaxRows + 1];
  __shared__ float pre[kHcMaxRows];
  const int64_t t = blockIdx.x;
  const int hc = static_cast<int>(p.hc);
  const int64_t D = p.dim, K = hc * D;
  for (int r = threadIdx.x; r <= rows; r += blockDim.x) {
    float v = 0.f;
    for (int s = 0; s < S; ++s) v += part[(t * S + s) * (rows + 1) + r];
    m[r] = v;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const float rs =
        static_cast<float>(1.0 / sqrt(static_cast<double>(m[rows]) / static_cast<double>(K) + p.norm_eps));
    for (int r = 0; r < rows; ++r) m[r] *= rs;
    for (int i = 0; i < hc; ++i) pre[i] = sigmoid_of(m[i] * w.scale[0] + w.base[i]) + p.hc_eps;
    if (post) {
      float* pt = post + t * hc;
      for (int i = 0; i < hc; ++i) pt[i] = 2.0f * sigmoid_of(m[hc + i] * w.scale[1] + w.base[hc + i]);
      float* ct = comb + t * hc * hc;
      for (int k = 0; k < hc * hc; ++k) ct[k] = m[2 * hc + k] * w.scale[2] + w.base[2 * hc + k];
      sinkhorn_one(ct, hc, p.sinkhorn_iters, p.hc_eps);
    }
  }
  __syncthreads();
  const float* xt = X + t * K;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int i = 0; i < hc; ++i) acc += pre[i] * xt[i * D + d];
    u[t * D + d] = acc;
  }
}

// Thread per (t, d): X_j[d] = post_j · f[d] + Σ_i comb[i][j] · X_i[d] for every j at once.
__global__ void post_kernel(const float* f, const float* post, const float* comb, float* X, int64_t n, int hc,
                            int64_t D) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= n * D) return;
  const int64_t t = k / D, d = k % D;
  float* xt = X + t * hc * D;
  float in[kHcMaxStreams];  // unrolled to the most streams: held in registers
#pragma unroll
  for (int i = 0; i < kHcMaxStreams; ++i) in[i] = i < hc ? xt[i * D + d] : 0.f;
  const float* pt = post + t * hc;
  const float* ct = comb + t * hc * hc;
  const float fd = f[t * D + d];
  for (int j = 0; j < hc; ++j) {
    float acc = pt[j] * fd;
#pragma unroll
    for (int i = 0; i < kHcMaxStreams; ++i)
      if (i < hc) acc += ct[i * hc + j] * in[i];
    xt[j * D + d] = acc;
  }
}

void check_shape(const HcParams& p, int64_t rows, const char* op) {
  if (p.hc < 1 || p.hc > kHcMaxStreams || rows > kHcMaxRows || p.dim < 1)
    throw std::runtime_error(std::string("CUDA ") + op + ": " + std::to_string(p.hc) + " streams of " +
                             std::to_string(p.dim) + " (the device's mHC takes at most " +
                             std::to_string(kHcMaxStreams) + " streams)");
}

void mix(const HcParams& p, const HcView& w, const float* X, int64_t n, int64_t rows, float* u, float* post,
         float* comb, void* work, Stream s) {
  const int64_t K = p.hc * p.dim;
  const int S = hc_mix_slices(K);
  const int64_t per = (K + S - 1) / S;
  auto* part = static_cast<float*>(work);
  mix_parts_kernel<<<dim3(blocks_for(n, 1), static_cast<unsigned>(S)), kThreads, 0, cu(s)>>>(
      w.fn, X, K, static_cast<int>(rows), per, part);
  check_launch("hc mixes");
  mix_finish_kernel<<<blocks_for(n, 1), kThreads, 0, cu(s)>>>(p, w, X, part, S, static_cast<int>(rows), u,
                                                              post, comb);
  check_launch("hc mix finish");
}

}  // namespace

void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post, float* comb,
            void* work, Stream s) {
  const int64_t rows = (2 + p.hc) * p.hc;
  check_shape(p, rows, "hc_pre");
  if (n > 0) mix(p, w, X, n, rows, u, post, comb, work, s);
}

void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X, int64_t n,
             Stream s) {
  check_shape(p, p.hc, "hc_post");
  if (n <= 0) return;
  post_kernel<<<blocks_for(n * p.dim, kThreads), kThreads, 0, cu(s)>>>(f, post, comb, X, n,
                                                                       static_cast<int>(p.hc), p.dim);
  check_launch("hc_post");
}

void hc_head(const HcParams& p, const HcView& w, const float* X, float* u, void* work, Stream s) {
  check_shape(p, p.hc, "hc_head");
  mix(p, w, X, 1, p.hc, u, nullptr, nullptr, work, s);
}

}  // namespace strata::gpu
