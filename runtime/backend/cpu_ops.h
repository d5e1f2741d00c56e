// The CPU's Ops: the kernels of cpu-kernels/ on the compute arena's threads.
#pragma once

#include "runtime/backend/ops.h"

namespace strata {

class CpuOps final : public Ops {
 public:
  void linear(const WeightView& w, const float* x, int64_t n, float* out) const override;
  void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const override;
};

// The one instance (the ops hold no state).
const CpuOps& cpu_ops();

}  // namespace strata
