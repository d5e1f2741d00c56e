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

namespace strata {

enum class ScoringFunc { Softmax, Sigmoid, SqrtSoftplus };

struct RouterParams {
  ScoringFunc scoring = ScoringFunc::Sigmoid;
  int64_t n_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool norm_topk_prob = true;
  float routed_scaling_factor = 1;
};

// logits [n_experts]; bias [n_experts] or nullptr. Writes top_k ids (best first) and weights.
void route_token(const RouterParams& p, const float* logits, const float* bias, int32_t* ids, float* weights);
// Hash routing (DeepSeek-V4's first layers): the experts are given (ids [top_k], from the
// token's row of tid2eid); weights as in route_token from the unbiased scores of those experts.
void route_token_fixed(const RouterParams& p, const float* logits, const int32_t* ids, float* weights);

}  // namespace strata
