#include <cuda_runtime.h>

#include <algorithm>

#include "gpu-kernels/transfer.h"

namespace strata::gpu {

double measure_h2d_gbps(int device, size_t bytes, int repeats, std::string* why) {
  auto fail = [&](cudaError_t e, const char* what) {
    if (why) *why = std::string(what) + ": " + cudaGetErrorString(e);
    return 0.0;
  };
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return fail(e, "cudaSetDevice");
  void* host = nullptr;
  void* dev = nullptr;
  if ((e = cudaMallocHost(&host, bytes)) != cudaSuccess) return fail(e, "cudaMallocHost");
  if ((e = cudaMalloc(&dev, bytes)) != cudaSuccess) {
    cudaFreeHost(host);
    return fail(e, "cudaMalloc");
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double best = 0;
  for (int i = 0; i <= repeats && e == cudaSuccess; ++i) {  // the first copy warms up
    cudaEventRecord(start);
    e = cudaMemcpyAsync(dev, host, bytes, cudaMemcpyHostToDevice);
    cudaEventRecord(stop);
    if (e == cudaSuccess) e = cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (i > 0 && ms > 0) best = std::max(best, static_cast<double>(bytes) / (ms * 1e-3) / 1e9);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(dev);
  cudaFreeHost(host);
  if (e != cudaSuccess) return fail(e, "cudaMemcpyAsync");
  return best;
}

}  // namespace strata::gpu
