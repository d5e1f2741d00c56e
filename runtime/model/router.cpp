#include "runtime/model/router.h"

#include <algorithm>
#include <string>

#include "runtime/common/error.h"

namespace strata {

RouterParams router_params(const ModelConfig& c, const ModelOptions& opts) {
  RouterParams p;
  p.scoring = c.scoring_func;
  p.n_experts = c.n_routed_experts;
  p.top_k = c.num_experts_per_tok;
  p.n_group = std::max<int64_t>(c.n_group, 1);
  p.topk_group = std::max<int64_t>(c.topk_group, 1);
  p.norm_topk_prob = c.norm_topk_prob;
  p.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  if (opts.experts_per_token != 0) {
    if (opts.experts_per_token < 0 || opts.experts_per_token > c.n_routed_experts)
      throw Error("--experts-per-token " + std::to_string(opts.experts_per_token) + " is outside [1, " +
                  std::to_string(c.n_routed_experts) + "]: the model has " + std::to_string(c.n_routed_experts) +
                  " routed experts per layer (n_routed_experts of " + c.source + ")");
    p.top_k = opts.experts_per_token;
  }
  if (opts.min_expert_weight < 0 || opts.min_expert_weight >= 1)
    throw Error("minimum expert weight " + std::to_string(opts.min_expert_weight) + " is outside [0, 1)");
  return p;
}

int64_t drop_small_experts(float* weights, int64_t top_k, float min_share) {
  if (min_share <= 0) return 0;
  float sum = 0;
  for (int64_t i = 0; i < top_k; ++i) sum += weights[i];
  int64_t skipped = 0;
  for (int64_t i = 0; i < top_k; ++i)
    if (sum > 0 && weights[i] / sum < min_share) {
      weights[i] = 0;
      ++skipped;
    }
  return skipped;
}

}  // namespace strata
