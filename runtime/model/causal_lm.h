// A loaded model that turns tokens into next-token logits, keeping its own KV cache for one
// sequence. One implementation per architecture; load_causal_lm picks it from the config.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "memory-tier/planner.h"
#include "runtime/model/model_files.h"

namespace strata {

class Device;
class Engram;
class ExpertSource;
struct ScheduleStats;

// How MLA attention is evaluated. Absorbed: scores against the cached latent directly (the
// decode form); Decompressed: keys and values expanded per head from the latent (the prefill
// form). Auto: absorbed for single tokens and for batches under a sparse attention mask (V3.2
// deep in a context: each token scores only the keys its indexer picked), else decompressed.
enum class MlaMode { Auto, Absorbed, Decompressed };

struct ForwardOptions {
  MlaMode mla = MlaMode::Auto;
};

// The default of ModelOptions::max_step_tokens (as llama.cpp's n_ubatch).
constexpr int64_t kDefaultStepTokens = 512;

// Settings fixed for the life of a loaded model (they shape what its caches hold).
struct ModelOptions {
  // DeepSeek-V4's activation quantize-dequantize steps (FP8 on the KV non-rope dims, FP4 on
  // the indexer's queries and keys). Part of the published math; off only for experiments.
  bool act_quant = true;
  // Routed experts per token (0: num_experts_per_tok from the config). Hash-routed layers
  // keep the table's experts.
  int64_t experts_per_token = 0;
  // "Dynamic" expert count: a routed expert whose normalized weight (its share of the
  // token's routed weight, before routed_scaling_factor) is below this is skipped; 0 = off.
  float min_expert_weight = 0;
  // Routed experts read through a DRAM cache of this many bytes, filled from the files with
  // io_uring + O_DIRECT (memory-tier/expert_store.h); 0: read in place from the memory map.
  uint64_t expert_cache_bytes = 0;
  bool expert_io_pread = false;  // the cache reads with the pread pool instead of io_uring
  // The K-quant (Q2_K to Q6_K) matrices the CPU computes repacked at load into its tiled layout
  // (runtime/backend/host_layout.h), each 16 rows' blocks interleaved so the integer dots read
  // one stream a tile: routed experts read in place from the memory map (no cache, no
  // placement) and, on V3 / R1 / V3.2, the host's attention projections, dense and shared FFNs
  // and output head copied into DRAM of their own size (the file's pages become page cache the
  // kernel may drop); experts a placement fixes in DRAM rewritten where they lie (not Q6_K,
  // whose layout is larger). Experts read on use through the cache, and whatever the device
  // holds, stay as stored. Off: everything as stored.
  bool repack = false;
  // The keys attention and the indexers read in bf16 rows instead of f32 (llama.cpp's
  // --cache-type-k): MLA's latent and rope caches and V3.2's indexer keys, V4's sliding-window
  // ring and both compressors' rows. Half the memory per token and half the bytes a decode step streams
  // from the cache, each row rounded once when it is written (as the published inference code
  // keeps its cache in bf16). Attention on the CPU only (refused where a layer's attention runs
  // on a device).
  bool kv_bf16 = false;
  // --cache-type-k auto (the command line's default): kv_bf16 chosen at load (ComputeContext,
  // kv_bf16_by_default): bf16 where no GPU computes, else f32.
  bool kv_auto = false;
  // Test hook of the expert cache's reads (memory-tier/range_reader.h: RangeReaderOptions::fault):
  // sees every completion and may replace its result (-EIO, a short count).
  std::function<int(uint32_t file, uint64_t offset, uint32_t length, int result)> expert_io_fault;
  // Experts placed by the planner (runtime/model/expert_placement.h): DRAM-tier experts are
  // read into DRAM once at load and stay there; NVMe-tier experts go through the cache of
  // expert_cache_bytes; GPU-tier experts are copied to `gpu` and computed there (without a
  // gpu: held in DRAM and computed by the CPU). Missing pairs count as NVMe. Empty: every
  // expert through the cache (or the map).
  std::map<std::pair<int, int>, Tier> expert_placement;
  // The device that runs the GPU tier (runtime/backend/device.h; null: none). Each MoE layer
  // submits the device's share (GPU-tier routed experts, shared experts placed on the GPU)
  // to its queue, then computes the CPU's share while the device works.
  std::shared_ptr<Device> gpu;
  // Prefill offload (runtime/model/expert_source.h: enable_offload): a routed expert held on
  // the host that gets at least this many tokens of a batch runs on `gpu`, its weights copied
  // there for the batch. 0: never.
  int64_t offload_batch = 0;
  // The tier of the plan's other tensors, by name: a layer's shared expert runs on `gpu` when
  // its three matrices are GPU-tier there. Missing names: the CPU.
  std::map<std::string, Tier> tensor_placement;
  // Engram tables paged through a DRAM cache of this many bytes (runtime/model/engram_store.h);
  // 0: read from the memory map.
  uint64_t engram_cache_bytes = 0;
  // Engram tables placed by the planner, by layer: NVMe-tier tables are paged through the
  // cache of engram_cache_bytes, the others read from the memory map. Missing layers count as
  // NVMe. Empty: every table paged when engram_cache_bytes > 0, else every table mapped.
  std::map<int, Tier> engram_placement;
  // How the DRAM buffers of fixed experts and caches are allocated: NUMA policy (from the
  // profile's cpu.numa_policy with --profile), huge pages, page-locking for the GPU.
  HostMemoryOptions host_memory;
  // Check the residual stream after every layer for NaN / infinity and name the first layer
  // that produced one (diagnostics; without it only the final hidden state is checked).
  bool check_finite_layers = false;
  // Tokens one sequence may hold (its KV caches are reserved for this many at creation and
  // never grow); 0: the config's max_position_embeddings, capped at kDefaultContext.
  int64_t context = 0;
  // Most tokens one forward pass computes at once (llama.cpp's n_ubatch): a longer step runs
  // in pieces of this many (CausalLM::forward_batch). It bounds a step's workspace, which the
  // plan sets aside on the GPU for this many tokens at the full context. 0: no limit.
  int64_t max_step_tokens = kDefaultStepTokens;
  // The step workspace `gpu` reserves at load (Device::reserve_workspace): -1 sizes it
  // (runtime/model/device_workspace.h) and reserves it where it fits; otherwise what the plan
  // set aside (0: none).
  int64_t gpu_workspace_bytes = -1;
  // Hears the experts read into DRAM at load (done of total), when there are any.
  std::function<void(size_t done, size_t total)> load_progress;
};

// The context a sequence gets when ModelOptions::context is 0 (as llama.cpp's default): real
// models allow 128K-1M positions, whose caches would not fit next to the weights.
constexpr int64_t kDefaultContext = 4096;

// The context ModelOptions asks for, bounded by the model's max_position_embeddings.
int64_t effective_context(const ModelConfig& c, const ModelOptions& o);

// One sequence's state in one model: its KV caches (reserved for capacity() tokens at
// creation) and, on Engram models, its n-gram history. Made by CausalLM::new_sequence and
// used only with that model. After a forward step that threw, reset it before reuse.
class Sequence {
 public:
  virtual ~Sequence() = default;
  int64_t n_past() const { return n_past_; }      // tokens in the cache (the next position)
  int64_t capacity() const { return capacity_; }  // tokens it may hold
  virtual void reset() = 0;                       // forget every token (keeps the reservation)

 protected:
  explicit Sequence(int64_t capacity) : capacity_(capacity) {}
  int64_t n_past_ = 0;
  int64_t capacity_;
};

// One sequence's share of a batched forward step: its new tokens, and where its logits go
// ([tokens.size(), vocab] when all_logits, else the last position's [vocab]).
struct SequenceStep {
  Sequence* seq = nullptr;
  std::span<const int32_t> tokens;
  std::vector<float>* logits = nullptr;
  bool all_logits = false;
  // No logits wanted (logits may be null): a piece of a step that does not end it.
  bool no_logits = false;
};

// Routed expert slots decided so far (`routed`) and those skipped by min_expert_weight.
struct RoutingStats {
  int64_t routed = 0, skipped = 0;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  // Tokens a sequence of this model may hold (effective_context of its options).
  virtual int64_t context() const = 0;
  // A new, empty sequence with its caches reserved for context() tokens.
  virtual std::unique_ptr<Sequence> new_sequence() const = 0;
  // Runs each step's tokens after its sequence's cache, in one pass over the layers: the
  // per-token work (norms, projections, the router, shared and routed experts) runs once over
  // every step's tokens together, so a routed expert several sequences chose is read once;
  // attention runs per sequence over its own cache. Each sequence at most once per call.
  // Throws strata::Error for a token id outside the vocabulary, a sequence past its capacity
  // or the model's context, or a sequence of another model. Steps of more tokens in all than
  // max_step_tokens() run as consecutive pieces of at most that many (the same results within
  // rounding, as chunked prefill), so what a step holds on a device stays bounded.
  void forward_batch(std::span<const SequenceStep> steps, const ForwardOptions& opts = {});
  // ModelOptions::max_step_tokens (0: no limit).
  virtual int64_t max_step_tokens() const = 0;

  // The model's own sequence, for one-sequence use (made on first use).
  // Tokens already in it (the position of the next token).
  int64_t n_past() const { return own_ ? own_->n_past() : 0; }
  // Clears it.
  void reset() {
    if (own_) own_->reset();
  }
  // Runs `tokens` at positions n_past().. as one batch of the own sequence; see forward_batch.
  void forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits,
               const ForwardOptions& opts = {});
  virtual RoutingStats routing_stats() const = 0;
  // What loading decided that a user should hear (e.g. modules present but not used).
  virtual std::vector<std::string> load_notes() const { return {}; }
  // The routed experts: where they are read from, per-(layer, expert) use counts, cache stats.
  virtual const ExpertSource& experts() const = 0;
  // The Engram module, when the model has one.
  virtual const Engram* engram() const { return nullptr; }
  // How the MoE layers' work split between the CPU and the GPU device, and how much overlapped.
  virtual ScheduleStats schedule_stats() const;

 protected:
  // One step of at most max_step_tokens() tokens in all, as forward_batch describes.
  virtual void forward_step(std::span<const SequenceStep> steps, const ForwardOptions& opts) = 0;

 private:
  std::unique_ptr<Sequence> own_;
};

// Throws strata::Error unless `steps` name distinct sequences with room for their tokens
// (their capacity and the model's max_positions).
void check_steps(std::span<const SequenceStep> steps, int64_t max_positions);

// Throws strata::Error when positions n_past .. n_past + n - 1 do not fit the model's context
// (max_position_embeddings): positions past it were never trained, and RoPE/YaRN past it is
// extrapolation nobody checked.
void check_context(int64_t n_past, int64_t n, int64_t max_positions);

// Throws strata::Error when v[0, n_tokens · width) holds a NaN or an infinity: names the
// position (first_position + token) and where the check ran (`after`: "the last layer", or
// layer >= 0 for "layer N"; built only when it throws: the check runs every step). A weight holding a NaN, an absurd scale or config value (routed_scaling_factor)
// makes every logit NaN: this turns a silent wrong answer into an error. The sequence's caches
// then hold the bad values: reset before reusing it.
void check_finite_activations(const float* v, int64_t n_tokens, int64_t width, int64_t first_position,
                              const char* after, int64_t layer = -1);

// The model of m.config's architecture over m's weights (held by reference: m must outlive it).
// A GPU device in opts first gets its step workspace reserved (ModelOptions::gpu_workspace_bytes).
std::unique_ptr<CausalLM> load_causal_lm(const ModelFiles& m, const ModelOptions& opts = {});

}  // namespace strata
