// Where a model's routed experts come from during the forward pass, and how often each is
// used. Mapped: read in place from the memory-mapped checkpoint (the OS page cache decides
// what stays in DRAM). Stored: read on demand through the memory tier's ExpertStore — a DRAM
// cache of a fixed budget filled with io_uring/O_DIRECT reads, the experts a layer routes to
// prefetched as soon as its router has decided, so later reads overlap the first experts'
// compute.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memory-tier/expert_store.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/moe_ffn.h"
#include "runtime/model/weights.h"

namespace strata {

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;

  // out [n, d] += Σ_j wts[t][j] · expert_{ids[t][j]}(x[t]) over the top_k slots of each token
  // of MoE layer `layer`; tokens are grouped by expert so each expert's weights are read once;
  // slots with weight 0 are skipped. swiglu_limit > 0 applies V4's clamp.
  void add_routed(int layer, const float* x, int64_t n, int64_t d, const int32_t* ids, const float* wts, int64_t top_k,
                  float* out, float swiglu_limit = 0);
  // One forward step ended (ages the store's frequency scores).
  virtual void end_step() {}

  // Next-layer prediction: whether guesses are used (only when experts are read through the
  // store), and a guess of the experts `layer` will route the coming batch to (e.g. its gate
  // applied to the previous layer's hidden state). The guesses are prefetched right after the
  // reads of the layer being computed are scheduled, and scored when `layer` routes.
  virtual bool wants_prediction() const { return false; }
  void predict(int layer, std::span<const int32_t> ids);
  struct PredictionStats {
    int64_t guessed = 0, correct = 0, used = 0;  // distinct experts per (layer, batch), summed
  };
  const PredictionStats& prediction_stats() const { return prediction_; }

  // Tokens routed to each (layer, expert) so far, and tokens that passed each layer's router.
  const std::vector<std::vector<int64_t>>& counts() const { return counts_; }
  const std::vector<int64_t>& tokens() const { return tokens_; }
  virtual std::optional<ExpertStoreStats> store_stats() const { return std::nullopt; }
  // "mapped" or "DRAM cache of N MiB, io_uring (O_DIRECT)".
  virtual std::string describe() const = 0;

 protected:
  ExpertSource(int n_layers, int n_experts);
  // The distinct experts of `layer` the batch will use, before any is computed.
  virtual void will_use(int layer, std::span<const int32_t> experts) = 0;
  // Starts reads of guessed experts (no wait; may skip what does not fit).
  virtual void prefetch_guess(int, std::span<const int32_t>) {}
  // The expert's weights when they stay valid without a pin (read in place), else nullptr;
  // when every expert of a batch has them, the batch's experts run as one parallel job.
  virtual const Mlp* resident(int, int) const { return nullptr; }
  // Runs fn with the expert's weights, valid during the call.
  virtual void with_expert(int layer, int expert, const std::function<void(const Mlp&)>& fn) = 0;

 private:
  std::vector<std::vector<int64_t>> counts_;
  std::vector<int64_t> tokens_;
  std::vector<std::vector<int32_t>> guess_;  // [layer] distinct guessed experts, pending
  PredictionStats prediction_;
};

// The routed experts of layers [0, num_hidden_layers) of the model: Mapped when
// opts.expert_cache_bytes is 0 and there is no placement, else Stored (placed experts fixed in
// DRAM at load, the rest read on use through the cache). Throws strata::Error naming the tensor when an
// expert is missing or malformed, or naming the budget when one expert does not fit in it.
std::unique_ptr<ExpertSource> make_expert_source(const ModelFiles& m, const Weights& w, const ModelOptions& opts);

}  // namespace strata
