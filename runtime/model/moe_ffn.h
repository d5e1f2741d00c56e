// The feed-forward piece shared by the DeepSeek models: a SwiGLU MLP (optionally clamped, as in
// V4). The routed-expert sum is ExpertSource::add_routed (runtime/model/expert_source.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/backend/ops.h"

namespace strata {

// out [n, d] = w2(swiglu(w1 x, w3 x)); swiglu_limit > 0 applies V4's clamp.
void mlp_forward(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit = 0);

// One expert's share of a routed batch: its tokens' activations x [n, d] and its output out [n, d].
struct ExpertJob {
  const Mlp* mlp;
  const float* x;
  int64_t n;
  float* out;
  int node = 0;  // the compute node arena it runs on (expert_home_node; 0 without a NUMA split)
};
// Every job's mlp_forward as one parallel job (oneTBB; each product splits its rows further):
// the experts of a layer share the cores instead of taking turns, so a decode step pays one
// fork-join per layer rather than three per expert. With a NUMA split each node's arena runs
// its own jobs, all nodes at once (cpu-kernels/compute_arena.h). Jobs whose products take
// oneDNN (linear_path: prefill-sized token counts) run first, one after another on the calling
// thread: those products take every core already. The same results as calling mlp_forward on each job in
// turn.
void mlp_forward_many(std::span<const ExpertJob> jobs, float swiglu_limit = 0);

}  // namespace strata
