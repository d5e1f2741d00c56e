#include "runtime/model/moe_ffn.h"

#include <tbb/parallel_for.h>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/linear.h"
#include "runtime/backend/cpu_ops.h"

namespace strata {

void mlp_forward(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) {
  cpu_ops().mlp(m, x, n, out, swiglu_limit);
}

void mlp_forward_many(std::span<const ExpertJob> jobs, float swiglu_limit) {
  // Experts with a GEMM-sized share of the batch (prefill) multiply through oneDNN, whose
  // OpenMP team already takes every core: they run one after another on this thread. Started
  // from oneTBB workers instead, each would bring its own team (cores x cores threads).
  std::vector<ExpertJob> small;
  for (const ExpertJob& j : jobs) {
    if (linear_path(j.mlp->w1, j.mlp->w1.rows, j.n) == LinearPath::Gemm) mlp_forward(*j.mlp, j.x, j.n, j.out, swiglu_limit);
    else small.push_back(j);
  }
  auto run = [&](std::span<const ExpertJob> js) {
    tbb::parallel_for(size_t{0}, js.size(), [&](size_t i) { mlp_forward(*js[i].mlp, js[i].x, js[i].n, js[i].out, swiglu_limit); });
  };
  // Already inside a compute arena (or no split): all jobs here.
  if (compute_nodes() == 1 || compute_arena_of_this_thread() >= 0) return run_in_compute_arena([&] { run(small); });
  std::vector<std::vector<ExpertJob>> per_node(static_cast<size_t>(compute_nodes()));
  for (const ExpertJob& j : small) per_node[static_cast<size_t>(j.node) % per_node.size()].push_back(j);
  run_on_compute_nodes([&](int k) { run(per_node[static_cast<size_t>(k)]); });
}

}  // namespace strata
