// The router of a model's config (cpu-kernels/router.h computes it).
#pragma once

#include "cpu-kernels/router.h"
#include "runtime/config/model_config.h"
#include "runtime/model/causal_lm.h"

namespace strata {

// The config's router, top_k from opts.experts_per_token when set (strata::Error when above
// n_routed_experts, or for a minimum expert weight outside [0, 1)).
RouterParams router_params(const ModelConfig& c, const ModelOptions& opts = {});


// The routing options of ModelOptions applied to one token's top_k slots: weights of experts
// whose normalized share (weight / Σ weights) is below min_share become 0 (skipped). Returns
// the number skipped.
int64_t drop_small_experts(float* weights, int64_t top_k, float min_share);

}  // namespace strata
