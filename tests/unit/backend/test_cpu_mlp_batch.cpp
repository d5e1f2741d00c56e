// The CPU's batch of expert MLPs: jobs that say their tokens are rows of one shared input
// (MlpJob::source / rows, as the MoE layer passes them) get those rows quantized once for all
// of them. Their outputs are the same bits as each job computed alone, for every path the
// gate and up products take (integer row dots, tiles, float dots) and with tokens shared by
// several jobs.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cpu-kernels/linear.h"
#include "runtime/backend/device.h"
#include "tests/unit/kernels/kernel_test_util.h"

namespace strata {
namespace {

struct Expert {
  test::Mat w1, w2, w3;
  Mlp mlp;
};

Expert make_expert(WeightType t, int64_t d, int64_t inter, uint32_t seed) {
  Expert e{test::make_matrix(t, inter, d, WeightType::F32, seed), test::make_matrix(t, d, inter, WeightType::F32, seed + 1),
           test::make_matrix(t, inter, d, WeightType::F32, seed + 2), {}};
  e.mlp = {e.w1.view, e.w2.view, e.w3.view};
  return e;
}

TEST(CpuMlpBatch, SharedInputRowsGiveTheSameBitsAsEachJobAlone) {
  const int64_t d = 256, inter = 256, n = 40;
  const std::vector<float> source = test::randn(n * d, 3);
  for (WeightType t : {WeightType::Q4_K, WeightType::Q6_K, WeightType::MXFP4, WeightType::IQ2_XXS, WeightType::F32}) {
    std::vector<Expert> experts;
    for (uint32_t k = 0; k < 3; ++k) experts.push_back(make_expert(t, d, inter, 10 + 5 * k));
    // Job k's tokens: 2 (the row dots), 13 and 30 (tiles where the CPU has them), overlapping.
    const std::vector<std::vector<int32_t>> rows = {
        {7, 31}, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 39}, [] {
          std::vector<int32_t> r;
          for (int32_t i = 0; i < 30; ++i) r.push_back((i * 7) % 40);
          return r;
        }()};
    std::vector<std::vector<float>> xs(3), alone(3), shared(3);
    std::vector<MlpJob> plain, with_source;
    for (size_t k = 0; k < 3; ++k) {
      const auto m = static_cast<int64_t>(rows[k].size());
      for (int32_t r : rows[k]) xs[k].insert(xs[k].end(), source.begin() + r * d, source.begin() + (r + 1) * d);
      alone[k].assign(static_cast<size_t>(m * d), 0.0f);
      shared[k].assign(static_cast<size_t>(m * d), 0.0f);
      plain.push_back({&experts[k].mlp, xs[k].data(), m, alone[k].data()});
      with_source.push_back({&experts[k].mlp, xs[k].data(), m, shared[k].data(), 0, source.data(), rows[k].data()});
    }
    const Ops& ops = host_device()->ops();
    ops.mlp_batch(plain, 0);
    ops.mlp_batch(with_source, 0);
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(shared[k], alone[k]) << weight_type_name(t) << " job " << k << " ("
                                     << linear_path_name(linear_path(experts[k].mlp.w1, inter, rows[k].size())) << ")";
      std::vector<float> one(alone[k].size());
      ops.mlp(experts[k].mlp, xs[k].data(), static_cast<int64_t>(rows[k].size()), one.data(), 0);
      EXPECT_EQ(one, alone[k]) << weight_type_name(t) << " job " << k;
    }
  }
}

}  // namespace
}  // namespace strata
