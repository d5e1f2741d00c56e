// The feed-forward piece shared by the DeepSeek models: a SwiGLU MLP (optionally clamped, as in
// V4). The routed-expert sum is ExpertSource::add_routed (runtime/model/expert_source.h).
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

}  // namespace strata
