// Norms, RoPE, SwiGLU, add/scale, the Hadamard rotation and the FP8/FP4 quantize-dequantize
// steps (gpu_ops.h). CPU twins: cpu-kernels/ops.cpp (rms_norm, layer_norm, swiglu_limited,
// hadamard, fp8_qdq, fp4_qdq) and cpu-kernels/rope.cpp (Rope::apply_*).
#include <cuda_fp4.h>
#include <cuda_fp8.h>

#include "gpu-kernels/cuda_util.cuh"

namespace strata::gpu {
namespace {

constexpr int kNormThreads = 256;

__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int64_t d, float eps) {
  __shared__ float red[32];
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * d;
  float* yr = y + static_cast<int64_t>(blockIdx.x) * d;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  ss = block_sum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) yr[i] = xr[i] * inv * w[i];
}

__global__ void layer_norm_kernel(const float* x, const float* w, const float* b, float* y, int64_t d, float eps) {
  __shared__ float red[32];
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * d;
  float* yr = y + static_cast<int64_t>(blockIdx.x) * d;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += xr[i];
  const float mean = block_sum(s, red) / static_cast<float>(d);
  float v = 0.f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) v = fmaf(xr[i] - mean, xr[i] - mean, v);
  const float inv = rsqrtf(block_sum(v, red) / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
}

__global__ void swiglu_kernel(float* g, const float* u, int64_t n, float limit) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float a = g[i], b = u[i];
    if (limit > 0) {
      a = fminf(a, limit);
      b = fminf(fmaxf(b, -limit), limit);
    }
    g[i] = a / (1.0f + expf(-a)) * b;
  }
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, int64_t n, float a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] *= a;
}

// f32 to bf16, to nearest with ties to even, NaN kept quiet (cpu-kernels/float_formats.h:
// f32_to_bf16, bit for bit).
__global__ void to_bf16_kernel(uint16_t* dst, const float* src, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t x = __float_as_uint(src[i]);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
      dst[i] = static_cast<uint16_t>((x >> 16) | 0x40);
      continue;
    }
    x += 0x7fffu + ((x >> 16) & 1u);
    dst[i] = static_cast<uint16_t>(x >> 16);
  }
}

struct Freqs {
  double f[256];
};

// Thread per (token, pair): the angle once, applied to every head.
__global__ void rope_kernel(Freqs fr, int nf, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride,
                            int64_t token_stride, const int64_t* pos, int64_t pos0) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * nf) return;
  const int64_t t = i / nf;
  const int k = static_cast<int>(i % nf);
  const double a = static_cast<double>(pos ? pos[t] : pos0) * fr.f[k];
  const float c = static_cast<float>(cos(a)), s = static_cast<float>(sin(a));
  const int64_t i0 = halves ? k : 2 * k, i1 = halves ? k + nf : 2 * k + 1;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + t * token_stride + h * head_stride;
    const float x0 = v[i0], x1 = v[i1];
    v[i0] = x0 * c - x1 * s;
    v[i1] = x0 * s + x1 * c;
  }
}

// Block per row; the row in shared memory (dim floats).
__global__ void hadamard_kernel(float* x, int64_t dim) {
  extern __shared__ float v[];
  float* row = x + static_cast<int64_t>(blockIdx.x) * dim;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) v[i] = row[i];
  __syncthreads();
  for (int64_t h = 1; h < dim; h *= 2) {
    for (int64_t p = threadIdx.x; p < dim / 2; p += blockDim.x) {
      const int64_t j = (p / h) * 2 * h + p % h;
      const float a = v[j], b = v[j + h];
      v[j] = a + b;
      v[j + h] = a - b;
    }
    __syncthreads();
  }
  const float s = rsqrtf(static_cast<float>(dim));
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) row[i] = v[i] * s;
}

__device__ float fp8_round(float v) {
  const __nv_fp8_storage_t b = __nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3);
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(b, __NV_E4M3)));
}
__device__ float fp4_round(float v) {
  const __nv_fp4_storage_t b = __nv_cvt_float_to_fp4(v, __NV_E2M1, cudaRoundNearest);
  return __half2float(__half(__nv_cvt_fp4_to_halfraw(b, __NV_E2M1)));
}

// Block per (row, block of `block` elements).
__global__ void quant_kernel(float* x, int64_t stride, int64_t dim, int64_t block, int kind) {
  __shared__ float red[32];
  const int64_t nb = (dim + block - 1) / block;
  const int64_t r = blockIdx.x / nb, b0 = (blockIdx.x % nb) * block;
  const int64_t b1 = b0 + block < dim ? b0 + block : dim;
  float* row = x + r * stride;
  float amax = 0.f;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x) amax = fmaxf(amax, fabsf(row[i]));
  amax = block_max(amax, red);
  float scale;
  if (kind == 2) {
    scale = exp2f(ceilf(log2f(fmaxf(amax, 6.0f * ldexpf(1.0f, -126)) / 6.0f)));
  } else {
    scale = fmaxf(amax, 1e-4f) / 448.0f;
    if (kind == 1) scale = exp2f(ceilf(log2f(scale)));
  }
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x)
    row[i] = (kind == 2 ? fp4_round(row[i] / scale) : fp8_round(row[i] / scale)) * scale;
}

unsigned grid_stride_blocks(int64_t n) { return blocks_for(n, 256) > 4096 ? 4096 : blocks_for(n, 256); }

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps, Stream s) {
  if (n <= 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(n), kNormThreads, 0, cu(s)>>>(x, w, y, d, eps);
  check_launch("rms_norm");
}

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d, float eps, Stream s) {
  if (n <= 0) return;
  layer_norm_kernel<<<static_cast<unsigned>(n), kNormThreads, 0, cu(s)>>>(x, w, b, y, d, eps);
  check_launch("layer_norm");
}

void swiglu(float* g, const float* u, int64_t n, float limit, Stream s) {
  if (n <= 0) return;
  swiglu_kernel<<<grid_stride_blocks(n), 256, 0, cu(s)>>>(g, u, n, limit);
  check_launch("swiglu");
}

void add(const float* a, const float* b, float* out, int64_t n, Stream s) {
  if (n <= 0) return;
  add_kernel<<<grid_stride_blocks(n), 256, 0, cu(s)>>>(a, b, out, n);
  check_launch("add");
}

void scale(float* x, int64_t n, float a, Stream s) {
  if (n <= 0) return;
  scale_kernel<<<grid_stride_blocks(n), 256, 0, cu(s)>>>(x, n, a);
  check_launch("scale");
}

void to_bf16(uint16_t* dst, const float* src, int64_t n, Stream s) {
  if (n <= 0) return;
  to_bf16_kernel<<<grid_stride_blocks(n), 256, 0, cu(s)>>>(dst, src, n);
  check_launch("to_bf16");
}

void rope(const double* host_freqs, int64_t nf, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride,
          int64_t token_stride, const int64_t* pos, int64_t pos0, Stream s) {
  if (nf > 256) throw std::runtime_error("CUDA rope: " + std::to_string(2 * nf) + " rotated dims (at most 512)");
  const int64_t work = n * nf;
  if (work <= 0 || heads <= 0) return;
  Freqs fr{};
  for (int64_t i = 0; i < nf; ++i) fr.f[i] = host_freqs[i];
  rope_kernel<<<static_cast<unsigned>((work + 255) / 256), 256, 0, cu(s)>>>(fr, static_cast<int>(nf), halves, x, n,
                                                                          heads, head_stride, token_stride, pos, pos0);
  check_launch("rope");
}

void hadamard_rows(float* x, int64_t n, int64_t dim, Stream s) {
  if (dim <= 0 || (dim & (dim - 1)) != 0 || dim > 8192)
    throw std::runtime_error("CUDA hadamard: dim " + std::to_string(dim) + " is not a power of two up to 8192");
  if (n <= 0) return;
  hadamard_kernel<<<static_cast<unsigned>(n), 256, static_cast<size_t>(dim) * sizeof(float), cu(s)>>>(x, dim);
  check_launch("hadamard");
}

void quant_rows(float* x, int64_t n, int64_t stride, int64_t dim, int64_t block, int kind, Stream s) {
  if (n <= 0 || dim <= 0) return;
  const int64_t blocks = n * ((dim + block - 1) / block);
  quant_kernel<<<static_cast<unsigned>(blocks), 128, 0, cu(s)>>>(x, stride, dim, block, kind);
  check_launch("quant_rows");
}

}  // namespace strata::gpu
