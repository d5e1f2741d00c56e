// --gpu {auto,none,sim,cuda:N}: which device runs the plan's GPU tier.
#pragma once

#include <memory>
#include <string>

#include "runtime/backend/device.h"

namespace strata {

struct GpuChoice {
  enum Kind { Auto, None, Sim, Cuda } kind = Auto;
  int index = 0;  // cuda:N
};

// Throws strata::Error naming the flag and the accepted forms.
GpuChoice parse_gpu_choice(const std::string& text);

// Whether this build can run a forward pass on a CUDA device (not yet: the CUDA backend
// implements the seam of runtime/backend/ in gpu-kernels/ when it lands).
bool cuda_forward_available();

// What a choice resolves to here: Auto becomes Cuda when cuda_forward_available() and a device
// is present, else None. Cuda throws strata::Error saying what the build can do instead.
GpuChoice resolve_gpu_choice(const GpuChoice& c);

// "none", "sim", "cuda:0".
std::string gpu_choice_name(const GpuChoice& c);

}  // namespace strata
