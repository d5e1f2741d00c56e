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

// Whether this build has the CUDA backend and a CUDA device is present.
bool cuda_forward_available();

// What a choice resolves to here: Auto becomes None (the CUDA backend is used when named);
// Cuda throws strata::Error, saying what can be used instead, when the build has no CUDA or
// the device is absent.
GpuChoice resolve_gpu_choice(const GpuChoice& c);

// "none", "sim", "cuda:0".
std::string gpu_choice_name(const GpuChoice& c);

}  // namespace strata
