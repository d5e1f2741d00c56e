#include <cuda_runtime.h>

#include "gpu-kernels/pinned.h"

namespace strata::gpu {
namespace {

bool failed(cudaError_t e, const char* what, std::string* why) {
  if (e == cudaSuccess) return false;
  if (why) *why = std::string(what) + ": " + cudaGetErrorString(e);
  cudaGetLastError();  // clear the sticky-free error so later calls start clean
  return true;
}

}  // namespace

int pinning_device_count(std::string* why) {
  static std::string first_why;
  static const int n = [] {
    int count = 0;
    if (failed(cudaGetDeviceCount(&count), "cudaGetDeviceCount", &first_why)) return 0;
    if (count == 0) first_why = "cudaGetDeviceCount: no device";
    return count;
  }();
  if (why && n == 0) *why = first_why;
  return n;
}

bool host_register(void* p, size_t bytes, std::string* why) {
  return !failed(cudaHostRegister(p, bytes, cudaHostRegisterPortable), "cudaHostRegister", why);
}

bool host_unregister(void* p, std::string* why) {
  return !failed(cudaHostUnregister(p), "cudaHostUnregister", why);
}

}  // namespace strata::gpu
