// Products of every decodable weight type (gpu_ops.h: linear, dequantize, gather_rows).
// CPU twins: cpu-kernels/linear.cpp (linear_rows) and weight_view.cpp (dequantize_rows).
//
// The weights are decoded in registers, 32 elements (one group, decode_group.h) at a time:
//   few tokens (decode)  a warp per output row; lane l takes groups l, l+32, ... and keeps up
//                        to kTok tokens' sums, reduced across the warp at the end (also the
//                        grouped rows of MLA's per-head products, each group with its own x);
//   many tokens          64 rows × 64 tokens per block of 256 threads; per group 64 threads
//                        decode the block's rows into shared memory beside the tokens' slice
//                        of x, and each thread accumulates a 4×4 tile of the outputs.
#include <mutex>

#include "gpu-kernels/cuda_util.cuh"
#include "gpu-kernels/decode_group.h"

namespace strata::gpu {
namespace {

constexpr int kTok = 4;            // tokens per warp pass of the row kernel
constexpr int kRowsPerBlock = 8;   // warps (rows) per block of the row kernel
constexpr int64_t kTileMin = 16;   // from this many tokens, the tiled kernel

// Rows in groups (gpu_ops.h: linear_grouped): output row r is weight row r0 + (r / rpg)·wgs +
// r % rpg and reads x at (r / rpg)·xgs; a plain product is one group (rpg = nr).
struct Groups {
  int64_t rpg, wgs, xgs;
};

template <WeightType T, int NT>
__global__ void rows_kernel(Mat m, int64_t r0, int64_t nr, Groups gr, const float* __restrict__ x, int64_t n,
                            int64_t ldx, float* __restrict__ y, int64_t ldy) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= nr) return;
  const int64_t grp = row / gr.rpg, wrow = r0 + grp * gr.wgs + row % gr.rpg;
  x += grp * gr.xgs;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * NT;
  const int nt = static_cast<int>(n - t0 < NT ? n - t0 : NT);
  const int64_t groups = (m.cols + 31) / 32;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;
  for (int64_t g = lane; g < groups; g += 32) {
    float w[32];
    decode32<T>(m, wrow, g, w);
    const int64_t c0 = 32 * g;
    const int cn = static_cast<int>(m.cols - c0 < 32 ? m.cols - c0 : 32);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= nt) break;
      const float* xt = x + (t0 + t) * ldx + c0;
      float s = 0.f;
#pragma unroll
      for (int j = 0; j < 32; ++j) s = fmaf(w[j], j < cn ? xt[j] : 0.f, s);  // constant indices: w stays in registers
      acc[t] += s;
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float v = warp_sum(acc[t]);
    if (lane == 0 && t < nt) y[(t0 + t) * ldy + row] = v;
  }
}

template <WeightType T>
__global__ void __launch_bounds__(256) tile_kernel(Mat m, int64_t r0, int64_t nr, const float* __restrict__ x, int64_t n,
                                                   int64_t ldx, float* __restrict__ y, int64_t ldy) {
  __shared__ float ws[64][33];
  __shared__ float xs[64][33];
  const int tid = threadIdx.x, tr = tid / 16, tt = tid % 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 64, tok0 = static_cast<int64_t>(blockIdx.y) * 64;
  const int64_t groups = (m.cols + 31) / 32;
  float acc[4][4] = {};
  for (int64_t g = 0; g < groups; ++g) {
    if (tid < 64) {
      float w[32];
      if (row0 + tid < nr) decode32<T>(m, r0 + row0 + tid, g, w);
      else
        for (int j = 0; j < 32; ++j) w[j] = 0.f;
#pragma unroll
      for (int j = 0; j < 32; ++j) ws[tid][j] = w[j];
    }
    for (int i = tid; i < 64 * 32; i += 256) {
      const int t = i / 32, j = i % 32;
      const int64_t tok = tok0 + t, c = 32 * g + j;
      xs[t][j] = (tok < n && c < m.cols) ? x[tok * ldx + c] : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int j = 0; j < 32; ++j) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = ws[tr * 4 + i][j];
#pragma unroll
      for (int k = 0; k < 4; ++k) b[k] = xs[tt * 4 + k][j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int k = 0; k < 4; ++k) acc[i][k] = fmaf(a[i], b[k], acc[i][k]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int64_t row = row0 + tr * 4 + i, tok = tok0 + tt * 4 + k;
      if (row < nr && tok < n) y[tok * ldy + row] = acc[i][k];
    }
}

// The transposed product per head (gpu_ops.h: linear_t_heads): block per (head, group of 32
// columns), threads across the head's rows j; each thread decodes its rows' group and weighs it
// by x[t][h][j]; the block sums the 32 columns of kTok tokens at a time.
template <WeightType T>
__global__ void __launch_bounds__(128) t_heads_kernel(Mat m, int64_t row_stride, int64_t rows, const float* __restrict__ x,
                                                      int64_t n, int64_t ldx, int64_t xhs, float* __restrict__ y,
                                                      int64_t ldy, int64_t yhs) {
  __shared__ float part[4][kTok][32];  // per warp
  const int64_t groups = (m.cols + 31) / 32;
  const int64_t h = blockIdx.x / groups, g = blockIdx.x % groups;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t t0 = 0; t0 < n; t0 += kTok) {
    const int nt = static_cast<int>(n - t0 < kTok ? n - t0 : kTok);
    float acc[kTok][32];
#pragma unroll
    for (int t = 0; t < kTok; ++t)
#pragma unroll
      for (int k = 0; k < 32; ++k) acc[t][k] = 0.f;
    for (int64_t j = threadIdx.x; j < rows; j += blockDim.x) {
      float w[32];
      decode32<T>(m, h * row_stride + j, g, w);
#pragma unroll
      for (int t = 0; t < kTok; ++t) {
        const float xv = t < nt ? x[(t0 + t) * ldx + h * xhs + j] : 0.f;
#pragma unroll
        for (int k = 0; k < 32; ++k) acc[t][k] = fmaf(w[k], xv, acc[t][k]);
      }
    }
#pragma unroll
    for (int t = 0; t < kTok; ++t)
#pragma unroll
      for (int k = 0; k < 32; ++k) {
        const float v = warp_sum(acc[t][k]);
        if (lane == 0) part[warp][t][k] = v;
      }
    __syncthreads();
    if (threadIdx.x < 32 * kTok) {
      const int t = threadIdx.x / 32, k = threadIdx.x % 32;
      const int64_t c = 32 * g + k;
      if (t < nt && c < m.cols)
        y[(t0 + t) * ldy + h * yhs + c] = part[0][t][k] + part[1][t][k] + part[2][t][k] + part[3][t][k];
    }
    __syncthreads();
  }
}

// Rows of the table as f32: thread per (row, group); rows[i] names the table row (null: r0 + i).
template <WeightType T>
__global__ void decode_kernel(Mat m, int64_t r0, const int32_t* __restrict__ rows, int64_t nr, float* __restrict__ out) {
  const int64_t groups = (m.cols + 31) / 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= nr * groups) return;
  const int64_t r = i / groups, g = i % groups;
  float w[32];
  decode32<T>(m, rows ? rows[r] : r0 + r, g, w);
  float* o = out + r * m.cols + 32 * g;
  const int cn = static_cast<int>(m.cols - 32 * g < 32 ? m.cols - 32 * g : 32);
#pragma unroll
  for (int j = 0; j < 32; ++j)
    if (j < cn) o[j] = w[j];
}

// gr.rpg < nr (grouped rows) always takes the row kernel: a tile's rows would read different x.
template <WeightType T>
void launch_linear(const Mat& m, int64_t r0, int64_t nr, Groups gr, const float* x, int64_t n, int64_t ldx, float* y,
                   int64_t ldy, cudaStream_t s) {
  if (n >= kTileMin && gr.rpg >= nr) {
    const dim3 grid(static_cast<unsigned>((nr + 63) / 64), static_cast<unsigned>((n + 63) / 64));
    tile_kernel<T><<<grid, 256, 0, s>>>(m, r0, nr, x, n, ldx, y, ldy);
  } else if (n == 1) {
    const dim3 grid(static_cast<unsigned>((nr + kRowsPerBlock - 1) / kRowsPerBlock), 1);
    rows_kernel<T, 1><<<grid, 32 * kRowsPerBlock, 0, s>>>(m, r0, nr, gr, x, n, ldx, y, ldy);
  } else {
    const int64_t passes = (n + kTok - 1) / kTok;
    if (passes > 65535) throw std::runtime_error("CUDA grouped product: " + std::to_string(n) + " tokens in one call");
    const dim3 grid(static_cast<unsigned>((nr + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(passes));
    rows_kernel<T, kTok><<<grid, 32 * kRowsPerBlock, 0, s>>>(m, r0, nr, gr, x, n, ldx, y, ldy);
  }
  check_launch("linear");
}

template <WeightType T>
void launch_t_heads(const Mat& m, int64_t heads, int64_t row_stride, int64_t rows, const float* x, int64_t n,
                    int64_t ldx, int64_t xhs, float* y, int64_t ldy, int64_t yhs, cudaStream_t s) {
  const int64_t blocks = heads * ((m.cols + 31) / 32);
  t_heads_kernel<T><<<blocks_for(blocks, 1), 128, 0, s>>>(m, row_stride, rows, x, n, ldx, xhs, y, ldy, yhs);
  check_launch("linear_t_heads");
}

template <WeightType T>
void launch_decode(const Mat& m, int64_t r0, const int32_t* rows, int64_t nr, float* out, cudaStream_t s) {
  const int64_t work = nr * ((m.cols + 31) / 32);
  if (work == 0) return;
  decode_kernel<T><<<static_cast<unsigned>((work + 255) / 256), 256, 0, s>>>(m, r0, rows, nr, out);
  check_launch("dequantize");
}

// CALL(T) for the decodable type t; throws for the others.
#define STRATA_BY_TYPE(t, CALL)                                                                         \
  switch (t) {                                                                                          \
    case WeightType::F32: CALL(WeightType::F32); break;                                                 \
    case WeightType::F16: CALL(WeightType::F16); break;                                                 \
    case WeightType::BF16: CALL(WeightType::BF16); break;                                               \
    case WeightType::F8_E4M3: CALL(WeightType::F8_E4M3); break;                                         \
    case WeightType::MXFP4: CALL(WeightType::MXFP4); break;                                             \
    case WeightType::Q8_0: CALL(WeightType::Q8_0); break;                                               \
    case WeightType::Q4_0: CALL(WeightType::Q4_0); break;                                               \
    case WeightType::Q4_1: CALL(WeightType::Q4_1); break;                                               \
    case WeightType::Q5_0: CALL(WeightType::Q5_0); break;                                               \
    case WeightType::Q5_1: CALL(WeightType::Q5_1); break;                                               \
    case WeightType::Q2_K: CALL(WeightType::Q2_K); break;                                               \
    case WeightType::Q3_K: CALL(WeightType::Q3_K); break;                                               \
    case WeightType::Q4_K: CALL(WeightType::Q4_K); break;                                               \
    case WeightType::Q5_K: CALL(WeightType::Q5_K); break;                                               \
    case WeightType::Q6_K: CALL(WeightType::Q6_K); break;                                               \
    case WeightType::IQ4_NL: CALL(WeightType::IQ4_NL); break;                                           \
    case WeightType::IQ4_XS: CALL(WeightType::IQ4_XS); break;                                           \
    case WeightType::IQ2_XXS: CALL(WeightType::IQ2_XXS); break;                                         \
    case WeightType::IQ2_XS: CALL(WeightType::IQ2_XS); break;                                           \
    case WeightType::IQ2_S: CALL(WeightType::IQ2_S); break;                                             \
    case WeightType::IQ3_XXS: CALL(WeightType::IQ3_XXS); break;                                         \
    case WeightType::IQ3_S: CALL(WeightType::IQ3_S); break;                                             \
    case WeightType::IQ1_S: CALL(WeightType::IQ1_S); break;                                             \
    case WeightType::IQ1_M: CALL(WeightType::IQ1_M); break;                                             \
    default: unsupported(t);                                                                            \
  }

[[noreturn]] void unsupported(WeightType t) {
  throw std::runtime_error("CUDA products: weight type " + std::string(weight_type_name(t)) + " has no CUDA decoder");
}

// The lattice codebooks on each device, copied there once (41 KiB) and kept for the process.
const IqGrids* device_grids() {
  static std::mutex mu;
  static const IqGrids* on[64] = {};
  int dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev < 0 || dev >= 64) throw std::runtime_error("CUDA products: device index " + std::to_string(dev) + " out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (on[dev] == nullptr) {
    void* p = device_alloc(sizeof(IqGrids), "the lattice i-quant codebooks");
    try {
      check(cudaMemcpy(p, &iq_grids(), sizeof(IqGrids), cudaMemcpyHostToDevice), "cudaMemcpy (codebooks)");
    } catch (...) {
      device_free(p);
      throw;
    }
    on[dev] = static_cast<const IqGrids*>(p);
  }
  return on[dev];
}

// w as a kernel reads it: the lattice types with their codebooks on the current device.
Mat device_mat(const WeightView& w) { return mat_of(w, needs_grids(w.type) ? device_grids() : nullptr); }

}  // namespace

bool linear_supported(WeightType t) { return decodable(t); }

void prepare_device_tables() { (void)device_grids(); }

void linear(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
            Stream s) {
  if (nr <= 0 || n <= 0) return;
  const Mat m = device_mat(w);
  const Groups one{nr, 0, 0};
#define STRATA_LINEAR(T) launch_linear<T>(m, r0, nr, one, x, n, ldx, y, ldy, cu(s))
  STRATA_BY_TYPE(w.type, STRATA_LINEAR)
#undef STRATA_LINEAR
}

void linear_grouped(const WeightView& w, int64_t r0, int64_t nr, int64_t rows_per_group, int64_t w_group_stride,
                    const float* x, int64_t n, int64_t ldx, int64_t x_group_stride, float* y, int64_t ldy, Stream s) {
  if (nr <= 0 || n <= 0) return;
  const Mat m = device_mat(w);
  const Groups gr{rows_per_group, w_group_stride, x_group_stride};
#define STRATA_GROUPED(T) launch_linear<T>(m, r0, nr, gr, x, n, ldx, y, ldy, cu(s))
  STRATA_BY_TYPE(w.type, STRATA_GROUPED)
#undef STRATA_GROUPED
}

void linear_t_heads(const WeightView& w, int64_t heads, int64_t row_stride, int64_t rows, const float* x, int64_t n,
                    int64_t ldx, int64_t x_head_stride, float* y, int64_t ldy, int64_t y_head_stride, Stream s) {
  if (heads <= 0 || n <= 0) return;
  const Mat m = device_mat(w);
#define STRATA_T_HEADS(T) launch_t_heads<T>(m, heads, row_stride, rows, x, n, ldx, x_head_stride, y, ldy, y_head_stride, cu(s))
  STRATA_BY_TYPE(w.type, STRATA_T_HEADS)
#undef STRATA_T_HEADS
}

void dequantize(const WeightView& w, int64_t r0, int64_t nr, float* out, Stream s) {
  const Mat m = device_mat(w);
#define STRATA_DECODE(T) launch_decode<T>(m, r0, nullptr, nr, out, cu(s))
  STRATA_BY_TYPE(w.type, STRATA_DECODE)
#undef STRATA_DECODE
}

void gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out, Stream s) {
  const Mat m = device_mat(table);
#define STRATA_GATHER(T) launch_decode<T>(m, 0, rows, n, out, cu(s))
  STRATA_BY_TYPE(table.type, STRATA_GATHER)
#undef STRATA_GATHER
}

}  // namespace strata::gpu
