#include "runtime/backend/gpu_choice.h"

#include <charconv>

#include "runtime/backend/cuda_device.h"
#include "runtime/common/error.h"

namespace strata {

GpuChoice parse_gpu_choice(const std::string& text) {
  GpuChoice c;
  if (text == "auto") return c;
  if (text == "none") return {GpuChoice::None, 0};
  if (text == "sim") return {GpuChoice::Sim, 0};
  if (text.rfind("cuda", 0) == 0) {
    if (text == "cuda") return {GpuChoice::Cuda, 0};
    int n = -1;
    const char* b = text.data() + 5;
    const char* e = text.data() + text.size();
    if (text[4] == ':' && b < e && std::from_chars(b, e, n).ptr == e && n >= 0 && n < 64) return {GpuChoice::Cuda, n};
  }
  throw Error("--gpu: '" + text + "' is not one of auto, none, sim, cuda:N");
}

bool cuda_forward_available() { return cuda_backend_built() && cuda_device_count() > 0; }

GpuChoice resolve_gpu_choice(const GpuChoice& c) {
  // auto stays on the CPU: the CUDA backend runs when asked for by name (--gpu cuda:N).
  if (c.kind == GpuChoice::Auto) return {GpuChoice::None, 0};
  if (c.kind == GpuChoice::Cuda) {
    if (!cuda_backend_built())
      throw Error("--gpu " + gpu_choice_name(c) +
                  ": this build has no CUDA backend (the toolkit was not found when it was configured); --gpu sim "
                  "runs the plan's GPU tier on a simulated device (the same schedule, computed by the CPU), --gpu "
                  "none runs everything on the CPU");
    std::string why;
    const int n = cuda_device_count(&why);
    if (c.index >= n)
      throw Error("--gpu " + gpu_choice_name(c) + ": " +
                  (n == 0 ? why : "this machine has " + std::to_string(n) + " CUDA device(s)") +
                  "; --gpu sim runs the plan's GPU tier on a simulated device, --gpu none runs everything on the CPU");
  }
  return c;
}

std::string gpu_choice_name(const GpuChoice& c) {
  switch (c.kind) {
    case GpuChoice::Auto: return "auto";
    case GpuChoice::None: return "none";
    case GpuChoice::Sim: return "sim";
    case GpuChoice::Cuda: return "cuda:" + std::to_string(c.index);
  }
  return "?";
}

}  // namespace strata
