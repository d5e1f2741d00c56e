// Products of every decodable weight type (gpu_ops.h: linear, dequantize, gather_rows).
// CPU twins: cpu-kernels/linear.cpp (linear_rows) and weight_view.cpp (dequantize_rows).
//
// The weights are decoded in registers, 32 elements (one group, decode_group.h) at a time:
//   few tokens (decode)  a warp per output row; lane l takes groups l, l+32, ... and keeps up
//                        to kTok tokens' sums, reduced across the warp at the end;
//   many tokens          64 rows × 64 tokens per block of 256 threads; per group 64 threads
//                        decode the block's rows into shared memory beside the tokens' slice
//                        of x, and each thread accumulates a 4×4 tile of the outputs.
#include "gpu-kernels/cuda_util.cuh"
#include "gpu-kernels/decode_group.h"

namespace strata::gpu {
namespace {

constexpr int kTok = 4;            // tokens per warp pass of the row kernel
constexpr int kRowsPerBlock = 8;   // warps (rows) per block of the row kernel
constexpr int64_t kTileMin = 16;   // from this many tokens, the tiled kernel

template <WeightType T, int NT>
__global__ void rows_kernel(Mat m, int64_t r0, int64_t nr, const float* __restrict__ x, int64_t n, int64_t ldx,
                            float* __restrict__ y, int64_t ldy) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  if (row >= nr) return;
  const int64_t t0 = static_cast<int64_t>(blockIdx.y) * NT;
  const int nt = static_cast<int>(n - t0 < NT ? n - t0 : NT);
  const int64_t groups = (m.cols + 31) / 32;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;
  for (int64_t g = lane; g < groups; g += 32) {
    float w[32];
    decode32<T>(m, r0 + row, g, w);
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

template <WeightType T>
void launch_linear(const Mat& m, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
                   cudaStream_t s) {
  if (n >= kTileMin) {
    const dim3 grid(static_cast<unsigned>((nr + 63) / 64), static_cast<unsigned>((n + 63) / 64));
    tile_kernel<T><<<grid, 256, 0, s>>>(m, r0, nr, x, n, ldx, y, ldy);
  } else if (n == 1) {
    const dim3 grid(static_cast<unsigned>((nr + kRowsPerBlock - 1) / kRowsPerBlock), 1);
    rows_kernel<T, 1><<<grid, 32 * kRowsPerBlock, 0, s>>>(m, r0, nr, x, n, ldx, y, ldy);
  } else {
    const dim3 grid(static_cast<unsigned>((nr + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>((n + kTok - 1) / kTok));
    rows_kernel<T, kTok><<<grid, 32 * kRowsPerBlock, 0, s>>>(m, r0, nr, x, n, ldx, y, ldy);
  }
  check_launch("linear");
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
    default: unsupported(t);                                                                            \
  }

[[noreturn]] void unsupported(WeightType t) {
  throw std::runtime_error("CUDA products: weight type " + std::string(weight_type_name(t)) +
                           " has no CUDA decoder (the lattice i-quants are read on the CPU only)");
}

}  // namespace

bool linear_supported(WeightType t) { return decodable(t); }

void linear(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy,
            Stream s) {
  if (nr <= 0 || n <= 0) return;
  const Mat m = mat_of(w);
#define STRATA_LINEAR(T) launch_linear<T>(m, r0, nr, x, n, ldx, y, ldy, cu(s))
  STRATA_BY_TYPE(w.type, STRATA_LINEAR)
#undef STRATA_LINEAR
}

void dequantize(const WeightView& w, int64_t r0, int64_t nr, float* out, Stream s) {
  const Mat m = mat_of(w);
#define STRATA_DECODE(T) launch_decode<T>(m, r0, nullptr, nr, out, cu(s))
  STRATA_BY_TYPE(w.type, STRATA_DECODE)
#undef STRATA_DECODE
}

void gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out, Stream s) {
  const Mat m = mat_of(table);
#define STRATA_GATHER(T) launch_decode<T>(m, 0, rows, n, out, cu(s))
  STRATA_BY_TYPE(table.type, STRATA_GATHER)
#undef STRATA_GATHER
}

}  // namespace strata::gpu
