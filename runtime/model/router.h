// The DeepSeek MoE gate: which experts a token goes to, and with what weight.
//   scores   = sigmoid(logits) | softmax(logits) | sqrt(softplus(logits))       (f32)
//   selection uses scores + bias (e_score_correction_bias) when a bias exists;
//   group limit: experts split into n_group equal groups; a group's score is the sum of its
//   top-2 biased scores (its max when there is no bias); experts outside the best topk_group
//   groups are excluded; then the top_k experts by (biased) score, lowest index on ties;
//   weights  = the UNBIASED scores of the chosen experts, divided by their sum when
//   norm_topk_prob, times routed_scaling_factor.
#pragma once

#include <cstdint>

#include "runtime/config/model_config.h"
#include "runtime/model/causal_lm.h"

namespace strata {

struct RouterParams {
  ScoringFunc scoring = ScoringFunc::Sigmoid;
  int64_t n_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1;

  // top_k from opts.experts_per_token when set (strata::Error when above n_routed_experts).
  static RouterParams from_config(const ModelConfig& c, const ModelOptions& opts = {});
};

// logits [n_experts]; bias [n_experts] or nullptr. Writes top_k ids (best first) and weights.
void route_token(const RouterParams& p, const float* logits, const float* bias, int32_t* ids, float* weights);
// Hash routing (DeepSeek-V4's first layers): the experts are given (ids [top_k], from the
// token's row of tid2eid); weights as in route_token from the unbiased scores of those experts.
void route_token_fixed(const RouterParams& p, const float* logits, const int32_t* ids, float* weights);
// The routing options of ModelOptions applied to one token's top_k slots: weights of experts
// whose normalized share (weight / Σ weights) is below min_share become 0 (skipped). Returns
// the number skipped.
int64_t drop_small_experts(float* weights, int64_t top_k, float min_share);

}  // namespace strata
