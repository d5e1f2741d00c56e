// A loaded model that turns tokens into next-token logits, keeping its own KV cache for one
// sequence. One implementation per architecture; load_causal_lm picks it from the config.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "memory-tier/planner.h"
#include "runtime/model/model_files.h"

namespace strata {

class Engram;
class ExpertSource;

// How MLA attention is evaluated. Absorbed: scores against the cached latent directly (the
// decode form); Decompressed: keys and values expanded per head from the latent (the prefill
// form). Auto: decompressed for batches of more than one token, absorbed for single tokens.
enum class MlaMode { Auto, Absorbed, Decompressed };

struct ForwardOptions {
  MlaMode mla = MlaMode::Auto;
};

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
  // Experts placed by the planner (runtime/model/expert_placement.h): DRAM-tier experts are
  // read into DRAM once at load and stay there; NVMe-tier experts go through the cache of
  // expert_cache_bytes. GPU-tier experts are held in DRAM too (no GPU forward pass yet).
  // Missing pairs count as NVMe. Empty: every expert through the cache (or the map).
  std::map<std::pair<int, int>, Tier> expert_placement;
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
};

// Routed expert slots decided so far (`routed`) and those skipped by min_expert_weight.
struct RoutingStats {
  int64_t routed = 0, skipped = 0;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  // Tokens already in the cache (the position of the next token).
  virtual int64_t n_past() const = 0;
  // Clears the cache.
  virtual void reset() = 0;
  // Runs `tokens` at positions n_past().. as one batch and appends them to the cache. Writes
  // logits [tokens.size(), vocab] when all_logits, else the last position's [vocab].
  // Throws strata::Error for a token id outside the vocabulary.
  virtual void forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits,
                       const ForwardOptions& opts = {}) = 0;
  virtual RoutingStats routing_stats() const = 0;
  // What loading decided that a user should hear (e.g. modules present but not used).
  virtual std::vector<std::string> load_notes() const { return {}; }
  // The routed experts: where they are read from, per-(layer, expert) use counts, cache stats.
  virtual const ExpertSource& experts() const = 0;
  // The Engram module, when the model has one.
  virtual const Engram* engram() const { return nullptr; }
};

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
std::unique_ptr<CausalLM> load_causal_lm(const ModelFiles& m, const ModelOptions& opts = {});

}  // namespace strata
