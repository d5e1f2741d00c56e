// The MoE gate on the device (gpu_ops.h: route). CPU twin: cpu-kernels/router.cpp
// (route_token, route_token_fixed): the same scores, group limit, selection order (best first,
// lowest index on ties) and weights, a block per token.
#include <climits>

#include "gpu-kernels/cuda_util.cuh"

namespace strata::gpu {
namespace {

constexpr int kThreads = 256;

// (v, i) becomes (v2, i2) when that is the better pick: larger, or equal at a lower index.
__device__ __forceinline__ void keep_better(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

// The block's best of v[0, n) by keep_better; a NaN (a value already taken) is never picked.
__device__ int block_argmax(const float* v, int n, float* red_v, int* red_i) {
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int e = threadIdx.x; e < n; e += blockDim.x) keep_better(bv, bi, v[e], e);
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    keep_better(bv, bi, ov, oi);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) {
    red_v[warp] = bv;
    red_i[warp] = bi;
  }
  __syncthreads();
  bv = -INFINITY;
  bi = INT_MAX;
  for (int w = 0; w < warps; ++w) keep_better(bv, bi, red_v[w], red_i[w]);
  return bi;
}

// Shared memory: scores [E], sel [E] (the biased, group-limited selection values).
__global__ void route_kernel(RouterParams p, const float* logits, const float* bias, const int32_t* fixed,
                             int32_t* ids, float* weights) {
  extern __shared__ float sh[];
  __shared__ float red_v[32];
  __shared__ int red_i[32];
  __shared__ int picked[1024];
  const int E = static_cast<int>(p.n_experts);
  const int K = fixed ? static_cast<int>(p.top_k) : min(static_cast<int>(p.top_k), E);
  const int64_t t = blockIdx.x;
  float* scores = sh;
  float* sel = sh + E;
  const float* lg = logits + t * E;

  // Scores.
  if (p.scoring == ScoringFunc::Softmax) {
    float m = -INFINITY;
    for (int e = threadIdx.x; e < E; e += blockDim.x) m = fmaxf(m, lg[e]);
    m = block_max(m, red_v);
    const bool none = m == -INFINITY;  // a row of only -inf stays zeros, as the CPU's softmax
    for (int e = threadIdx.x; e < E; e += blockDim.x) scores[e] = none ? 0.f : expf(lg[e] - m);
    __syncthreads();
    if (threadIdx.x == 0 && !none) {
      double sum = 0;  // in f64, in order, as the CPU's softmax
      for (int e = 0; e < E; ++e) sum += scores[e];
      red_v[0] = static_cast<float>(1.0 / sum);
    }
    __syncthreads();
    const float inv = none ? 1.f : red_v[0];
    for (int e = threadIdx.x; e < E; e += blockDim.x) scores[e] *= inv;
  } else {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
      const float x = lg[e];
      scores[e] = p.scoring == ScoringFunc::Sigmoid ? sigmoid_of(x) : sqrtf(x > 20.f ? x : log1pf(expf(x)));
    }
  }
  __syncthreads();

  if (fixed) {
    if (threadIdx.x == 0)
      for (int i = 0; i < K; ++i) picked[i] = fixed[t * K + i];
  } else {
    for (int e = threadIdx.x; e < E; e += blockDim.x) sel[e] = scores[e] + (bias ? bias[e] : 0.f);
    __syncthreads();
    const int G = static_cast<int>(p.n_group);
    if (G > 1) {
      // A group's score: its largest value, plus its second largest when biased; the best
      // topk_group groups stay, the others' experts drop out.
      const int per = E / G;
      float* gscore = red_v;  // G <= 32 groups
      if (threadIdx.x < G) {
        float m1 = -INFINITY, m2 = -INFINITY;
        for (int e = threadIdx.x * per; e < (threadIdx.x + 1) * per; ++e) {
          if (sel[e] > m1) {
            m2 = m1;
            m1 = sel[e];
          } else if (sel[e] > m2) {
            m2 = sel[e];
          }
        }
        gscore[threadIdx.x] = bias ? m1 + (per > 1 ? m2 : 0.f) : m1;
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        unsigned keep = 0;
        for (int r = 0; r < min(static_cast<int>(p.topk_group), G); ++r) {
          float bv = -INFINITY;
          int bi = INT_MAX;
          for (int g = 0; g < G; ++g)
            if (!(keep >> g & 1u)) keep_better(bv, bi, gscore[g], g);
          if (bi < G) keep |= 1u << bi;
        }
        red_i[0] = static_cast<int>(keep);
      }
      __syncthreads();
      const unsigned keep = static_cast<unsigned>(red_i[0]);
      for (int e = threadIdx.x; e < E; e += blockDim.x)
        if (!(keep >> (e / per) & 1u)) sel[e] = -INFINITY;
      __syncthreads();
    }
    for (int r = 0; r < K; ++r) {
      const int best = block_argmax(sel, E, red_v, red_i);
      if (threadIdx.x == 0) {
        picked[r] = best;
        sel[best] = NAN;  // taken
      }
      __syncthreads();
    }
  }

  // Weights: the unbiased scores, normalized and scaled in the CPU's order.
  if (threadIdx.x == 0) {
    float sum = 0;
    for (int i = 0; i < K; ++i) sum += scores[picked[i]];
    for (int i = 0; i < K; ++i) {
      float w = scores[picked[i]];
      if (p.norm_topk_prob && sum > 0) w /= sum;
      w *= p.routed_scaling_factor;
      ids[t * K + i] = picked[i];
      weights[t * K + i] = w;
    }
  }
}

}  // namespace

void route(const RouterParams& p, const float* logits, const float* bias, const int32_t* fixed, int64_t n,
           int32_t* ids, float* weights, Stream s) {
  if (n <= 0) return;
  if (p.n_experts <= 0 || p.top_k > 1024 || p.n_group > 32 || (p.n_group > 1 && p.n_experts % p.n_group != 0))
    throw std::runtime_error("CUDA route: " + std::to_string(p.n_experts) + " experts in " +
                             std::to_string(p.n_group) + " groups, top " + std::to_string(p.top_k) +
                             " (the device's gate takes at most 1024 picks and 32 equal groups)");
  const size_t shared = 2 * static_cast<size_t>(p.n_experts) * sizeof(float);
  route_kernel<<<blocks_for(n, 1), kThreads, shared, cu(s)>>>(p, logits, bias, fixed, ids, weights);
  check_launch("route");
}

}  // namespace strata::gpu
