#include <cuda_runtime.h>

#include "gpu-kernels/smoke.h"

namespace strata::gpu {
namespace {

__global__ void add_kernel(const float* a, const float* b, float* c, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

bool ok(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return true;
  if (error) *error = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

}  // namespace

std::vector<DeviceInfo> list_devices(std::string* why) {
  std::vector<DeviceInfo> out;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    out.push_back({i, p.name, p.major, p.minor, p.totalGlobalMem});
  }
  if (out.empty() && why) *why = "no CUDA device present";
  return out;
}

bool smoke_add(int device, const std::vector<float>& a, const std::vector<float>& b, std::vector<float>& c,
               std::string* error) {
  if (a.size() != b.size()) {
    if (error) *error = "smoke_add: a and b differ in size";
    return false;
  }
  const int n = static_cast<int>(a.size());
  const size_t bytes = a.size() * sizeof(float);
  c.assign(a.size(), 0.f);
  float *da = nullptr, *db = nullptr, *dc = nullptr;
  bool good = ok(cudaSetDevice(device), "cudaSetDevice", error) &&
              ok(cudaMalloc(&da, bytes), "cudaMalloc", error) && ok(cudaMalloc(&db, bytes), "cudaMalloc", error) &&
              ok(cudaMalloc(&dc, bytes), "cudaMalloc", error) &&
              ok(cudaMemcpy(da, a.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D", error) &&
              ok(cudaMemcpy(db, b.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D", error);
  if (good) {
    add_kernel<<<(n + 255) / 256, 256>>>(da, db, dc, n);
    good = ok(cudaGetLastError(), "add_kernel launch", error) &&
           ok(cudaMemcpy(c.data(), dc, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H", error);
  }
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  return good;
}

}  // namespace strata::gpu
