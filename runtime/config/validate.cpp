// Consistency rules of a ModelConfig. Every message names the file and the keys involved.
// Upper bounds reject absurd sizes early so shapes and parameter counts stay far from int64
// overflow.
#include <set>
#include <cstdio>
#include <string>

#include "runtime/common/error.h"
#include "runtime/config/model_config.h"

namespace strata {

namespace {

constexpr int64_t kMaxDim = int64_t{1} << 24;     // any width, rank or vocabulary
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxExperts = int64_t{1} << 16;
constexpr int64_t kMaxEngramRows = int64_t{1} << 32;

class Checker {
 public:
  explicit Checker(const ModelConfig& c) : src_(c.source.empty() ? "config" : c.source) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(src_ + ": " + what); }

  void range(const char* key, int64_t v, int64_t lo, int64_t hi) const {
    if (v < lo || v > hi)
      fail(key + std::string(" = ") + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
  }
  void positive(const char* key, int64_t v, int64_t hi = kMaxDim) const {
    if (v <= 0) fail(key + std::string(" must be positive (found ") + std::to_string(v) + ")");
    range(key, v, 1, hi);
  }
  void positive_num(const char* key, double v) const {
    if (!(v > 0)) fail(key + std::string(" must be positive (found ") + std::to_string(v) + ")");
  }
  // A finite number within [lo, hi]: values far outside what any released model uses make the
  // activations overflow rather than mean something.
  void num_range(const char* key, double v, double lo, double hi) const {
    if (!(v >= lo && v <= hi)) {
      char msg[160];
      std::snprintf(msg, sizeof msg, " = %g is out of range [%g, %g]", v, lo, hi);
      fail(key + std::string(msg));
    }
  }
  void le(const char* ka, int64_t a, const char* kb, int64_t b) const {
    if (a > b)
      fail(std::string(ka) + " (" + std::to_string(a) + ") > " + kb + " (" + std::to_string(b) + ")");
  }
  void divides(const char* ka, int64_t a, const char* kb, int64_t b) const {
    if (a <= 0 || b % a != 0)
      fail(std::string(kb) + " (" + std::to_string(b) + ") is not divisible by " + ka + " (" +
           std::to_string(a) + ")");
  }

 private:
  std::string src_;
};

void check_engram(const ModelConfig& c, const Checker& k) {
  const EngramConfig& e = c.engram;
  k.range("engram.max_ngram_size", e.max_ngram_size, 2, 16);
  k.positive("engram.n_head_per_ngram", e.n_head_per_ngram, 1024);
  k.positive("engram.n_embed_per_ngram", e.n_embed_per_ngram);
  k.divides("engram.n_head_per_ngram", e.n_head_per_ngram, "engram.n_embed_per_ngram", e.n_embed_per_ngram);
  k.positive("engram.kernel_size", e.kernel_size, 64);
  k.range("engram.pad_id", e.pad_id, 0, c.vocab_size - 1);
  if (static_cast<int64_t>(e.vocab_sizes.size()) != e.max_ngram_size - 1)
    k.fail("engram.engram_vocab_size has " + std::to_string(e.vocab_sizes.size()) +
           " entries but engram.max_ngram_size " + std::to_string(e.max_ngram_size) + " needs " +
           std::to_string(e.max_ngram_size - 1) + " (one per n-gram order 2..N)");
  for (int64_t v : e.vocab_sizes) k.range("engram.engram_vocab_size[]", v, 2, kMaxEngramRows);
  if (e.layer_ids.empty()) k.fail("engram.layer_ids is empty");
  std::set<int> seen;
  for (int id : e.layer_ids) {
    if (id < 0 || id >= c.num_hidden_layers)
      k.fail("engram.layer_ids holds layer " + std::to_string(id) + " but num_hidden_layers is " +
             std::to_string(c.num_hidden_layers));
    if (!seen.insert(id).second) k.fail("engram.layer_ids lists layer " + std::to_string(id) + " twice");
  }
}

void check_v4(const ModelConfig& c, const Checker& k) {
  k.positive("head_dim", c.head_dim);
  if (c.qk_rope_head_dim >= c.head_dim)
    k.fail("qk_rope_head_dim (" + std::to_string(c.qk_rope_head_dim) + ") must be < head_dim (" +
           std::to_string(c.head_dim) + ")");
  k.positive("q_lora_rank", c.q_lora_rank);
  k.positive("o_groups", c.o_groups);
  k.divides("o_groups", c.o_groups, "num_attention_heads", c.num_attention_heads);
  k.positive("o_lora_rank", c.o_lora_rank);
  k.positive("sliding_window", c.sliding_window);
  k.positive("hc_mult", c.hc_mult, 64);
  k.positive("hc_sinkhorn_iters", c.hc_sinkhorn_iters, 1 << 16);
  k.positive_num("hc_eps", c.hc_eps);
  k.num_range("compress_rope_theta", c.compress_rope_theta, 1, 1e9);
  k.positive("index_n_heads", c.index_n_heads);
  k.positive("index_head_dim", c.index_head_dim);
  k.positive("index_topk", c.index_topk);
  if (c.qk_rope_head_dim > c.index_head_dim)
    k.fail("qk_rope_head_dim (" + std::to_string(c.qk_rope_head_dim) + ") > index_head_dim (" +
           std::to_string(c.index_head_dim) + ")");
  k.range("num_hash_layers", c.num_hash_layers, 0, c.num_hidden_layers);
  if (c.swiglu_limit < 0) k.fail("swiglu_limit must be >= 0");
  const int64_t n = static_cast<int64_t>(c.compress_ratios.size());
  if (n != c.num_hidden_layers && n != c.num_hidden_layers + c.num_nextn_predict_layers)
    k.fail("compress_ratios has " + std::to_string(n) + " entries; expected num_hidden_layers (" +
           std::to_string(c.num_hidden_layers) + ") or num_hidden_layers + num_nextn_predict_layers (" +
           std::to_string(c.num_hidden_layers + c.num_nextn_predict_layers) + ")");
  for (int64_t r : c.compress_ratios) k.range("compress_ratios[]", r, 0, kMaxDim);
  if (c.expert_dtype != "" && c.expert_dtype != "fp4" && c.expert_dtype != "fp8")
    k.fail("expert_dtype '" + c.expert_dtype + "' is unknown (fp4 or fp8)");
}

void check_mla(const ModelConfig& c, const Checker& k) {
  k.positive("intermediate_size", c.intermediate_size);
  k.positive("kv_lora_rank", c.kv_lora_rank);
  k.positive("qk_nope_head_dim", c.qk_nope_head_dim);
  k.positive("v_head_dim", c.v_head_dim);
  k.range("first_k_dense_replace", c.first_k_dense_replace, 0, c.num_hidden_layers);
  k.positive("moe_layer_freq", c.moe_layer_freq, kMaxLayers);
  k.positive("n_group", c.n_group, kMaxExperts);
  k.positive("topk_group", c.topk_group, kMaxExperts);
  k.le("topk_group", c.topk_group, "n_group", c.n_group);
  k.divides("n_group", c.n_group, "n_routed_experts", c.n_routed_experts);
  if (c.num_experts_per_tok > c.topk_group * (c.n_routed_experts / c.n_group))
    k.fail("num_experts_per_tok (" + std::to_string(c.num_experts_per_tok) +
           ") exceeds the experts of topk_group groups (topk_group " + std::to_string(c.topk_group) +
           " x n_routed_experts/n_group " + std::to_string(c.n_routed_experts / c.n_group) + ")");
  if (c.hc_mult != 0 || c.head_dim != 0 || !c.compress_ratios.empty() || c.o_groups != 0 || c.num_hash_layers != 0)
    k.fail("hc_mult/head_dim/compress_ratios/o_groups/num_hash_layers are deepseek_v4 keys but model_type is " +
           std::string(arch_name(c.arch)));
  if (c.arch == Arch::DeepseekV32) {
    if (c.index_topk > 0 && c.index_n_heads <= 0) k.fail("index_topk without index_n_heads");
    k.positive("index_n_heads", c.index_n_heads);
    k.positive("index_head_dim", c.index_head_dim);
    k.positive("index_topk", c.index_topk);
    k.positive("q_lora_rank", c.q_lora_rank);  // the indexer's wq_b reads the q LoRA latent
    if (c.qk_rope_head_dim > c.index_head_dim)
      k.fail("qk_rope_head_dim (" + std::to_string(c.qk_rope_head_dim) + ") > index_head_dim (" +
             std::to_string(c.index_head_dim) + ")");
  } else if (c.index_n_heads != 0 || c.index_head_dim != 0 || c.index_topk != 0) {
    if (c.index_topk > 0 && c.index_n_heads <= 0) k.fail("index_topk without index_n_heads");
    k.fail("index_n_heads/index_head_dim/index_topk need model_type deepseek_v32 (found deepseek_v3)");
  }
}

}  // namespace

void validate_config(const ModelConfig& c) {
  const Checker k(c);
  k.positive("vocab_size", c.vocab_size);
  k.positive("hidden_size", c.hidden_size);
  k.positive("num_hidden_layers", c.num_hidden_layers, kMaxLayers);
  k.range("num_nextn_predict_layers", c.num_nextn_predict_layers, 0, 64);
  k.positive("num_attention_heads", c.num_attention_heads, 1 << 16);
  k.positive("num_key_value_heads", c.num_key_value_heads, 1 << 16);
  k.divides("num_key_value_heads", c.num_key_value_heads, "num_attention_heads", c.num_attention_heads);
  k.range("q_lora_rank", c.q_lora_rank, 0, kMaxDim);
  k.positive("qk_rope_head_dim", c.qk_rope_head_dim);
  if (c.qk_rope_head_dim % 2 != 0) k.fail("qk_rope_head_dim (" + std::to_string(c.qk_rope_head_dim) + ") must be even");
  k.positive("moe_intermediate_size", c.moe_intermediate_size);
  k.positive("n_routed_experts", c.n_routed_experts, kMaxExperts);
  k.range("n_shared_experts", c.n_shared_experts, 0, 64);
  k.positive("num_experts_per_tok", c.num_experts_per_tok, kMaxExperts);
  k.le("num_experts_per_tok", c.num_experts_per_tok, "n_routed_experts", c.n_routed_experts);
  k.num_range("routed_scaling_factor", c.routed_scaling_factor, 1e-3, 1e3);
  k.num_range("rms_norm_eps", c.rms_norm_eps, 1e-12, 1e-1);
  // RoPE frequencies come from these: outside what released models use (theta 1e4 to 1e6,
  // YaRN factors 4 to 40, betas 1 and 32, mscales 1) the angles collapse or overflow to NaN, or
  // the attention is scaled by a factor that means nothing, without an error.
  k.num_range("rope_theta", c.rope_theta, 1, 1e9);
  k.positive("max_position_embeddings", c.max_position_embeddings, int64_t{1} << 40);
  k.range("bos_token_id", c.bos_token_id, -1, c.vocab_size - 1);
  k.range("eos_token_id", c.eos_token_id, -1, c.vocab_size - 1);
  for (int64_t id : c.extra_eos_token_ids) {
    if (id >= 0 && id < c.vocab_size) continue;
    std::string ids = "[" + std::to_string(c.eos_token_id);
    for (int64_t e : c.extra_eos_token_ids) ids += ", " + std::to_string(e);
    k.fail("eos_token_id " + ids + "] holds " + std::to_string(id) + ", outside the vocabulary of " +
           std::to_string(c.vocab_size) + " (vocab_size)");
  }
  if (c.topk_method != "noaux_tc" && c.topk_method != "greedy" && c.topk_method != "group_limited_greedy")
    k.fail("topk_method '" + c.topk_method + "' is unknown (noaux_tc, greedy or group_limited_greedy)");
  if (!c.rope_scaling.type.empty()) {
    if (c.rope_scaling.type != "yarn") k.fail("rope_scaling.type '" + c.rope_scaling.type + "' is not supported");
    k.num_range("rope_scaling.factor", c.rope_scaling.factor, 1, 1e4);
    k.num_range("rope_scaling.beta_fast", c.rope_scaling.beta_fast, 1e-3, 1e4);
    k.num_range("rope_scaling.beta_slow", c.rope_scaling.beta_slow, 1e-3, 1e4);
    k.num_range("rope_scaling.mscale", c.rope_scaling.mscale, 0, 1e3);
    k.num_range("rope_scaling.mscale_all_dim", c.rope_scaling.mscale_all_dim, 0, 1e3);
    k.positive("rope_scaling.original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings,
               int64_t{1} << 40);
  }
  if (c.quantization.present && !c.quantization.weight_block_size.empty()) {
    if (c.quantization.weight_block_size.size() != 2)
      k.fail("quantization_config.weight_block_size must have 2 entries");
    for (int64_t b : c.quantization.weight_block_size) k.positive("quantization_config.weight_block_size[]", b);
  }
  if (c.is_v4())
    check_v4(c, k);
  else
    check_mla(c, k);
  if (c.engram.enabled) check_engram(c, k);
}

}  // namespace strata
