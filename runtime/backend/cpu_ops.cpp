#include "runtime/backend/cpu_ops.h"

#include <vector>

#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"

namespace strata {

uint64_t mlp_bytes(const Mlp& m) {
  uint64_t b = 0;
  for (const WeightView* w : {&m.w1, &m.w2, &m.w3}) b += static_cast<uint64_t>(weight_data_bytes(*w) + weight_scale_bytes(*w));
  return b;
}

void CpuOps::linear(const WeightView& w, const float* x, int64_t n, float* out) const { strata::linear(w, x, n, out); }

void CpuOps::mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const {
  const int64_t inter = m.w1.rows;
  std::vector<float> g(static_cast<size_t>(n * inter)), u(static_cast<size_t>(n * inter));
  linear_pair(m.w1, m.w3, x, n, g.data(), u.data());
  swiglu_limited(g.data(), u.data(), g.data(), n * inter, swiglu_limit);
  strata::linear(m.w2, g.data(), n, out);
}

const CpuOps& cpu_ops() {
  static const CpuOps ops;
  return ops;
}

}  // namespace strata
