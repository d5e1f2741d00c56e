// The operations model code asks a device for. A backend implements them for its device
// (cpu_ops.h: the CPU kernels of cpu-kernels/); the model names what to compute, the device
// that holds the weights decides how. Pointers are in the memory of the device the ops belong
// to: host memory for the CPU and the simulated GPU, device memory for a real GPU.
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_view.h"

namespace strata {

// A SwiGLU MLP (a routed or shared expert, a dense FFN): gate w1 [inter, d], down w2 [d, inter],
// up w3 [inter, d].
struct Mlp {
  WeightView w1, w2, w3;
};

// Bytes an MLP's matrices (with their scales) span.
uint64_t mlp_bytes(const Mlp& m);

class Ops {
 public:
  virtual ~Ops() = default;
  // out [n, w.rows] = x [n, w.cols] · wᵀ, for every stored weight type.
  virtual void linear(const WeightView& w, const float* x, int64_t n, float* out) const = 0;
  // out [n, d] = w2(swiglu(w1 x, w3 x)); swiglu_limit > 0 applies DeepSeek-V4's clamp.
  virtual void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const = 0;
};

}  // namespace strata
