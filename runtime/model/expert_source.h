// Where a model's routed experts come from during the forward pass, and how often each is
// used. Mapped: read in place from the memory-mapped checkpoint (the OS page cache decides
// what stays in DRAM). Stored: read on demand through the memory tier's ExpertStore — a DRAM
// cache of a fixed budget filled with io_uring/O_DIRECT reads, the experts a layer routes to
// prefetched as soon as its router has decided, so later reads overlap the first experts'
// compute.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "memory-tier/expert_store.h"
#include "cpu-kernels/function_ref.h"
#include "runtime/backend/device.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/weights.h"

namespace strata {

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;

  // One MoE layer's routed work for a batch, split by where each expert is held: prepared on
  // the calling thread, the device's share submitted to its queue, the host's share computed,
  // then combined in expert order (the same sums whichever device computed an expert).
  // Entry u < used.size() of tokens, xs and ys belongs to used[u]; the vectors are reused from
  // batch to batch (entries past used.size() are left over, not cleared), so a warm decode
  // step allocates nothing here.
  struct RoutedBatch {
    int layer = 0;
    int64_t d = 0;
    std::vector<int32_t> used;                                   // distinct experts, ascending
    std::vector<std::vector<std::pair<int64_t, float>>> tokens;  // per used expert: (token, weight)
    std::vector<std::vector<int32_t>> rows;                      // per used expert: its tokens
    const float* x = nullptr;                                    // the layer's input [n, d]
    std::vector<std::vector<float>> xs, ys;                      // per used expert: inputs, outputs
    std::vector<size_t> on_device;                               // indices into used held by the device
    std::vector<size_t> streamed;  // indices into used whose host weights the device copies in for this batch
    std::vector<uint8_t> device_share;  // per used expert: 1 when on_device or streamed
  };
  // Groups x [n, d]'s top_k slots by expert into b (slots of weight 0 skipped), counts the use,
  // scores the guess for this layer, starts the reads of what is not resident.
  void prepare(int layer, const float* x, int64_t n, int64_t d, const int32_t* ids, const float* wts, int64_t top_k,
               RoutedBatch& b);
  // The experts the device holds, on its queue (copies in, products, copies out); an already
  // complete event when it holds none of them.
  Event submit_device(RoutedBatch& b, float swiglu_limit);
  // The other experts, on the CPU.
  void compute_host(RoutedBatch& b, float swiglu_limit);
  // out [n, d] += Σ wts · expert outputs, in expert order (after the device's event).
  static void combine(const RoutedBatch& b, float* out);

  // out [n, d] += Σ_j wts[t][j] · expert_{ids[t][j]}(x[t]) over the top_k slots of each token
  // of MoE layer `layer`; tokens are grouped by expert so each expert's weights are read once;
  // slots with weight 0 are skipped. swiglu_limit > 0 applies V4's clamp. All four steps above.
  void add_routed(int layer, const float* x, int64_t n, int64_t d, const int32_t* ids, const float* wts, int64_t top_k,
                  float* out, float swiglu_limit = 0);
  // The device that holds some experts (null: all on the host), and how many it holds.
  Device* device() const { return device_.get(); }
  // Prefill offload: an expert held on the host that gets at least `min_tokens` tokens of a
  // batch has its weights copied to `dev` and runs there (the GPU is compute-rich, the copy
  // costs its bytes over PCIe once; llama.cpp offloads from 32 tokens). 0: never.
  void enable_offload(std::shared_ptr<Device> dev, int64_t min_tokens);
  struct OffloadStats {
    int64_t experts = 0;  // expert passes copied to the device
    uint64_t bytes = 0;   // their weight bytes
  };
  OffloadStats offload_stats() const { return {offloaded_experts_.load(), offloaded_bytes_.load()}; }
  virtual int device_experts() const { return 0; }
  // Weight bytes the device's experts have read for the batches so far (as the store counts
  // the host's: an expert's bytes once per batch that used it).
  uint64_t device_bytes_used() const { return device_bytes_used_; }

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
  // The expert's weights in the device's memory when the device holds it, else nullptr.
  virtual const Mlp* on_device(int, int) const { return nullptr; }
  // The expert's types and shapes (its data pointers need not be valid).
  virtual const Mlp& shape_of(int layer, int expert) const = 0;
  // Runs fn with the expert's weights, valid during the call.
  virtual void with_expert(int layer, int expert, FunctionRef<void(const Mlp&)> fn) = 0;

 public:
  // Device bytes one offloaded expert takes in the step workspace: each matrix and scale
  // rounded up to Device::kWorkspaceAlign (at most mlp_bytes + 6 roundings).
  static uint64_t staged_bytes(const Mlp& m);

 private:
  // The batch's streamed experts through the device, double-buffered (submit_device's work).
  template <typename Run>
  void run_offloaded(RoutedBatch& b, Device* dev, Run& run);
  // Reused by prepare and compute_host (one layer's batch at a time).
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert_;
  std::vector<int32_t> host_used_, read_;
  std::vector<size_t> host_;
  std::vector<MlpJob> jobs_;
  std::vector<std::vector<int64_t>> counts_;
  std::vector<int64_t> tokens_;
  std::vector<std::vector<int32_t>> guess_;  // [layer] distinct guessed experts, pending
  PredictionStats prediction_;

 protected:
  std::shared_ptr<Device> device_;  // before the buffers it owns, so it outlives them

 private:
  uint64_t device_bytes_used_ = 0;
  int64_t offload_min_ = 0;
  std::atomic<int64_t> offloaded_experts_{0};
  std::atomic<uint64_t> offloaded_bytes_{0};
};

// The routed experts of layers [0, num_hidden_layers) of the model: Mapped when
// opts.expert_cache_bytes is 0 and there is no placement, else Stored (placed experts fixed in
// DRAM at load, the rest read on use through the cache). GPU-tier experts are copied to
// opts.gpu at load when there is one (and fixed in DRAM, computed by the CPU, when not). Throws strata::Error naming the tensor when an
// expert is missing or malformed, or naming the budget when one expert does not fit in it.
std::unique_ptr<ExpertSource> make_expert_source(const ModelFiles& m, const Weights& w, const ModelOptions& opts);

}  // namespace strata
