// The MoE feed-forward block every DeepSeek architecture composes: the router (group-limited
// top-k with its bias, or V4's hash routing from the token ids), the shared expert, the routed
// experts wherever the ExpertSource holds them, the --min-expert-weight skip, and the guess of
// the next layer's experts that starts their reads early. V3 / V3.2 and V4 differ only in what
// their config says (hash layers, the SwiGLU clamp), not in code.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "runtime/backend/device_weights.h"
#include "runtime/backend/schedule_stats.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/router.h"

namespace strata {

class ExpertSource;
class Weights;

// One layer's MoE weights (moe false: a dense layer, which the block does not run).
struct MoeLayerWeights {
  bool moe = false;
  WeightView gate;
  std::vector<float> gate_bias;  // empty without e_score_correction_bias
  std::vector<int32_t> tid2eid;  // [vocab, top_k] on hash layers, else empty
  Mlp shared;
  bool has_shared = false;
  std::string shared_names[3];  // the shared expert's tensors (for its placement)
};

// The per-layer schedule: the device's share (the layer's shared expert when the plan put it
// on the GPU, the GPU-tier routed experts) goes to its queue first; the CPU then computes its
// share (the shared expert otherwise, the routed experts held in DRAM or read from NVMe, whose
// reads of the next layer's guessed experts already started) while the device works; the
// outputs are summed in one fixed order, so the logits are the same bit for bit whichever
// device computed what.
//
// Reads layer li's MoE weights ("layers.N.ffn.*"); checks a hash layer's table (ids within
// the experts, distinct per token). strata::Error naming `file` and the tensor otherwise.
MoeLayerWeights load_moe_layer(const Weights& w, const ModelConfig& c, int64_t li, const std::string& file);

class MoeBlock {
 public:
  // layers: every layer's weights (dense layers moe = false); experts must outlive the block.
  MoeBlock(const ModelConfig& c, const ModelOptions& opts, std::vector<MoeLayerWeights> layers, ExpertSource& experts);
  bool is_moe(int64_t li) const { return layers_[static_cast<size_t>(li)].moe; }
  // out [n, d] = the MoE output of layer li for x [n, d] (tokens: the ids, for hash routing).
  void forward(int64_t li, const float* x, std::span<const int32_t> tokens, float* out);
  RoutingStats stats() const { return stats_; }
  ScheduleStats schedule() const { return schedule_; }

 private:
  // Routes x's tokens through layer li's gate: ids and weights [n, k] (k: the layer's top-k).
  int64_t route(int64_t li, const float* x, std::span<const int32_t> tokens, std::vector<float>& logits,
                std::vector<int32_t>& ids, std::vector<float>& wts) const;

  const ModelConfig& c_;
  RouterParams router_;
  float min_expert_weight_ = 0, swiglu_limit_ = 0;
  std::vector<MoeLayerWeights> layers_;
  ExpertSource& experts_;
  RoutingStats stats_;
  std::shared_ptr<Device> gpu_;                          // before the buffers it owns
  std::vector<std::unique_ptr<DeviceMlp>> shared_on_gpu_;  // [layer], null: on the CPU
  ScheduleStats schedule_;
};

}  // namespace strata
