// A CUDA GPU as a Device of the seam (runtime/backend/device.h): device memory counted against
// the plan's budget, a worker thread that issues each submitted piece of work on the device's
// stream and waits for it, copies by cudaMemcpy, and the Ops of gpu-kernels/ (gpu_ops.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/backend/device.h"

namespace strata {

// Whether this build has the CUDA backend (the toolkit was found at build time).
bool cuda_backend_built();
// CUDA devices present (0 in a build without CUDA or without a driver; *why says so).
int cuda_device_count(std::string* why = nullptr);

// Device `index` with `capacity_bytes` of the plan's budget, lowered to what the device has
// free (less a reserve for the CUDA context's own allocations); *note says when it was lowered.
// graphs: Device::run_graph captures and launches CUDA graphs (--cuda-graphs). Throws
// strata::Error when the build has no CUDA or the device is absent.
std::shared_ptr<Device> make_cuda_device(int index, uint64_t capacity_bytes, std::string* note = nullptr,
                                         bool graphs = false);

}  // namespace strata
