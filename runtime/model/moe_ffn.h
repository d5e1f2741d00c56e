// The feed-forward pieces shared by the DeepSeek models: a SwiGLU MLP (optionally clamped, as
// in V4) and the routed-expert sum of a batch, with tokens grouped by expert so each expert's
// weights are read once per batch.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu-kernels/weight_view.h"

namespace strata {

struct Mlp {
  WeightView w1, w2, w3;  // gate [inter, d], down [d, inter], up [inter, d]
};

// out [n, d] = w2(swiglu(w1 x, w3 x)); swiglu_limit > 0 applies V4's clamp.
void mlp_forward(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit = 0);

// out [n, d] += Σ_j weights[t][j] · experts[ids[t][j]](x[t]) over the top_k slots of each
// token; slots with weight 0 are skipped (not computed).
void add_routed_experts(const std::vector<Mlp>& experts, const float* x, int64_t n, int64_t d, const int32_t* ids,
                        const float* weights, int64_t top_k, float* out, float swiglu_limit = 0);

}  // namespace strata
