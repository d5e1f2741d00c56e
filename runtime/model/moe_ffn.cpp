#include "runtime/model/moe_ffn.h"

#include <tbb/parallel_for.h>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"

namespace strata {

void mlp_forward(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) {
  const int64_t inter = m.w1.rows;
  std::vector<float> g(static_cast<size_t>(n * inter)), u(static_cast<size_t>(n * inter));
  linear_pair(m.w1, m.w3, x, n, g.data(), u.data());
  swiglu_limited(g.data(), u.data(), g.data(), n * inter, swiglu_limit);
  linear(m.w2, g.data(), n, out);
}

void mlp_forward_many(std::span<const ExpertJob> jobs, float swiglu_limit) {
  run_in_compute_arena([&] {
    tbb::parallel_for(size_t{0}, jobs.size(), [&](size_t i) {
      const ExpertJob& j = jobs[i];
      mlp_forward(*j.mlp, j.x, j.n, j.out, swiglu_limit);
    });
  });
}

}  // namespace strata
