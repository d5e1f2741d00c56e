// The MoE gate on hand-derived cases: group limits, the selection bias, normalization, scaling.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/model/router.h"

namespace strata {
namespace {

double sig(double x) { return 1 / (1 + std::exp(-x)); }

RouterParams params(int64_t n_group, int64_t topk_group, bool norm, float scale) {
  RouterParams p;
  p.scoring = ScoringFunc::Sigmoid;
  p.n_experts = 8;
  p.top_k = 2;
  p.n_group = n_group;
  p.topk_group = topk_group;
  p.norm_topk_prob = norm;
  p.routed_scaling_factor = scale;
  return p;
}

// Groups of two: {2, -1} {1, 1} {3, -5} {0, 0}. Group scores (sum of the top two sigmoids):
// 1.150, 1.462, 0.959, 1.0 -> groups 1 and 0.
const std::vector<float> kLogits = {2, -1, 1, 1, 3, -5, 0, 0};
const std::vector<float> kZeroBias(8, 0.0f);  // a bias (even zero) selects the top-2-sum group score

TEST(Router, GroupLimitExcludesTheBestExpertOfALosingGroup) {
  int32_t ids[2];
  float w[2];
  route_token(params(4, 2, true, 1), kLogits.data(), kZeroBias.data(), ids, w);
  // Expert 4 has the highest score but its group (2) is out; expert 2 beats 3 on the tie.
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], sig(2) / (sig(2) + sig(1)), 1e-6);
  EXPECT_NEAR(w[1], sig(1) / (sig(2) + sig(1)), 1e-6);
  // Without a group limit expert 4 wins.
  route_token(params(1, 1, true, 1), kLogits.data(), kZeroBias.data(), ids, w);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 0);
  // Without a bias a group scores by its maximum: 0.881, 0.731, 0.953, 0.5 -> groups 2 and 0.
  route_token(params(4, 2, true, 1), kLogits.data(), nullptr, ids, w);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 0);
}

TEST(Router, BiasSelectsButDoesNotWeigh) {
  std::vector<float> bias(8, 0.0f);
  bias[6] = 1.0f;  // group 3 now scores 2.0; expert 6 leads with 1.5
  int32_t ids[2];
  float w[2];
  route_token(params(4, 2, true, 2.5f), kLogits.data(), bias.data(), ids, w);
  EXPECT_EQ(ids[0], 6);
  EXPECT_EQ(ids[1], 2);
  const double sum = sig(0) + sig(1);
  EXPECT_NEAR(w[0], 2.5 * sig(0) / sum, 1e-6) << "weights come from the unbiased score";
  EXPECT_NEAR(w[1], 2.5 * sig(1) / sum, 1e-6);
}

TEST(Router, WithoutNormalizationWeightsAreScaledScores) {
  int32_t ids[2];
  float w[2];
  route_token(params(4, 2, false, 2.5f), kLogits.data(), kZeroBias.data(), ids, w);
  EXPECT_NEAR(w[0], 2.5 * sig(2), 1e-6);
  EXPECT_NEAR(w[1], 2.5 * sig(1), 1e-6);
}

TEST(Router, SoftmaxGroupsScoreByTheirMaximumWithoutBias) {
  RouterParams p = params(4, 1, false, 1);
  p.scoring = ScoringFunc::Softmax;
  // Group maxima: 2, 1, 3, 0 -> only group 2 survives: experts 4 then 5.
  int32_t ids[2];
  float w[2];
  route_token(p, kLogits.data(), nullptr, ids, w);
  EXPECT_EQ(ids[0], 4);
  EXPECT_EQ(ids[1], 5);
  double z = 0;
  for (float l : kLogits) z += std::exp(double(l));
  EXPECT_NEAR(w[0], std::exp(3.0) / z, 1e-6);
  EXPECT_NEAR(w[1], std::exp(-5.0) / z, 1e-6);
}

TEST(Router, SqrtSoftplusScores) {
  RouterParams p = params(1, 1, false, 1);
  p.scoring = ScoringFunc::SqrtSoftplus;
  int32_t ids[2];
  float w[2];
  route_token(p, kLogits.data(), nullptr, ids, w);
  EXPECT_EQ(ids[0], 4);
  EXPECT_NEAR(w[0], std::sqrt(std::log1p(std::exp(3.0))), 1e-6);
}

}  // namespace
}  // namespace strata
