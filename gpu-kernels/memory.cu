// Devices, memory, copies and streams (gpu_ops.h). CPU twin: the host device's aligned_alloc
// and memcpy (runtime/backend/host_device.cpp).
#include "gpu-kernels/cuda_util.cuh"

namespace strata::gpu {

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear it: the runtime keeps a sticky error otherwise
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device present";
  return n;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

void set_device_quietly(int device) noexcept {
  if (cudaSetDevice(device) != cudaSuccess) cudaGetLastError();
}

void mem_info(uint64_t* free_bytes, uint64_t* total_bytes) {
  size_t f = 0, t = 0;
  check(cudaMemGetInfo(&f, &t), "cudaMemGetInfo");
  *free_bytes = f;
  *total_bytes = t;
}

void* device_alloc(uint64_t bytes, const std::string& what) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("CUDA cudaMalloc of " + std::to_string(bytes) + " bytes for " + what + ": " +
                             cudaGetErrorString(e));
  }
  return p;
}

void device_free(void* p) noexcept {
  if (p && cudaFree(p) != cudaSuccess) cudaGetLastError();  // nothing left to release: cleared
}

Stream stream_create() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  return s;
}

void stream_destroy(Stream s) {
  if (s) cudaStreamDestroy(cu(s));
}

void stream_sync(Stream s) { check(cudaStreamSynchronize(cu(s)), "a kernel on the device's stream"); }

void stream_settle(Stream s) noexcept {
  if (cudaStreamSynchronize(cu(s)) != cudaSuccess) cudaGetLastError();
}

Marker marker_create() {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
  return e;
}

void marker_destroy(Marker m) noexcept {
  if (m) cudaEventDestroy(static_cast<cudaEvent_t>(m));
}

void marker_record(Marker m, Stream s) { check(cudaEventRecord(static_cast<cudaEvent_t>(m), cu(s)), "cudaEventRecord"); }

void marker_sync(Marker m) { check(cudaEventSynchronize(static_cast<cudaEvent_t>(m)), "a copy on the device's copy stream"); }

void copy_h2d(void* dst, const void* host_src, uint64_t n, Stream s) {
  if (n) check(cudaMemcpyAsync(dst, host_src, n, cudaMemcpyHostToDevice, cu(s)), "cudaMemcpyAsync host to device");
}

void copy_d2h(void* host_dst, const void* src, uint64_t n, Stream s) {
  if (!n) return;
  check(cudaMemcpyAsync(host_dst, src, n, cudaMemcpyDeviceToHost, cu(s)), "cudaMemcpyAsync device to host");
  stream_sync(s);
}

void copy_d2d(void* dst, const void* src, uint64_t n, Stream s) {
  if (n) check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cu(s)), "cudaMemcpyAsync device to device");
}

void memset_zero(void* dst, uint64_t n, Stream s) {
  if (n) check(cudaMemsetAsync(dst, 0, n, cu(s)), "cudaMemsetAsync");
}

std::string device_name(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  return p.name;
}

}  // namespace strata::gpu
