// What every .cu of the op set shares: the error check, the stream cast, launch sizes and the
// warp/block reductions.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "gpu-kernels/gpu_ops.h"

namespace strata::gpu {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}
// After a launch: a bad configuration is reported here, a fault at the next sync.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline cudaStream_t cu(Stream s) { return static_cast<cudaStream_t>(s); }

// Blocks of `per` threads covering n items (a grid's x extent goes to 2^31 - 1).
inline unsigned blocks_for(int64_t n, int per) {
  const int64_t b = (n + per - 1) / per;
  if (b > 0x7fffffff) throw std::runtime_error("CUDA launch: " + std::to_string(n) + " items exceed one grid");
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// A cache row's value as f32: f32 rows as they are, bf16 rows (--cache-type-k bf16) widened
// exactly.
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ float widen(uint16_t v) { return __uint_as_float(static_cast<uint32_t>(v) << 16); }

// The CPU's scalar sigmoid (cpu-kernels/ops.h).
__device__ __forceinline__ float sigmoid_of(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum (or max) over a block of blockDim.x threads (a multiple of 32, at most 1024); every
// thread gets the result. `red` is 32 floats of shared memory; `identity` fills the lanes past
// the block's warps.
template <float (*WarpReduce)(float)>
__device__ __forceinline__ float block_reduce(float v, float* red, float identity) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = WarpReduce(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = lane < warps ? red[lane] : identity;
  return WarpReduce(v);
}
__device__ __forceinline__ float block_sum(float v, float* red) { return block_reduce<warp_sum>(v, red, 0.f); }
__device__ __forceinline__ float block_max(float v, float* red) { return block_reduce<warp_max>(v, red, -INFINITY); }

}  // namespace strata::gpu
