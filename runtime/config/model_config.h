// Model configuration of the DeepSeek family as strata uses it: one struct for
// DeepSeek-V3/R1/V3.1 (`deepseek_v3`), V3.2 (`deepseek_v32`, DSA indexer) and V4
// (`deepseek_v4`, mHC + compressed attention + hash routing), plus the Engram extension.
// Read from an HF `config.json` or from GGUF `deepseek2.*` metadata, and written back to
// both (parse(to_json(c)) == c).
//
// Required keys and defaults (a key that is absent or null takes the default; every other
// key listed under "required" is an error when missing):
//   all archs   required: model_type, vocab_size, hidden_size, num_hidden_layers,
//                         num_attention_heads, moe_intermediate_size, n_routed_experts,
//                         num_experts_per_tok, n_shared_experts, qk_rope_head_dim,
//                         routed_scaling_factor, q_lora_rank (null = no q LoRA; V4: > 0)
//               defaults (those of the HF config classes): num_key_value_heads =
//                 num_attention_heads, rms_norm_eps 1e-6, rope_theta 10000,
//                 max_position_embeddings 4096, bos_token_id 0, eos_token_id 1 (of a list,
//                 the first id; every id of it ends generation), tie_word_embeddings false,
//                 rope_scaling none,
//                 num_nextn_predict_layers 0 (no MTP layer when the key is absent)
//   V3 / V3.2   required: intermediate_size, kv_lora_rank, qk_nope_head_dim, v_head_dim,
//                         first_k_dense_replace, n_group, topk_group, norm_topk_prob
//               defaults: moe_layer_freq 1, scoring_func "sigmoid", topk_method "noaux_tc"
//   V3.2        required: index_n_heads, index_head_dim, index_topk
//   V4          required: head_dim, o_groups, o_lora_rank, sliding_window, compress_ratios,
//                         compress_rope_theta, hc_mult, hc_sinkhorn_iters, hc_eps,
//                         index_n_heads, index_head_dim, index_topk, norm_topk_prob
//               defaults: num_hash_layers 0, swiglu_limit 0 (no clamp), scoring_func
//                 "sqrtsoftplus", topk_method "noaux_tc", expert_dtype "" (same as weights),
//                 intermediate_size 0 (V4 has no dense FFN); n_group = topk_group = 1,
//                 first_k_dense_replace 0 and moe_layer_freq 1 (every layer is MoE);
//                 kv_lora_rank = qk_nope_head_dim = v_head_dim = 0 (no MLA up-projection).
//               compress_ratios has num_hidden_layers entries, or num_hidden_layers +
//               num_nextn_predict_layers (the published configs: the MTP layers' ratios last).
//
// Engram (an extension block of config.json, any arch):
//   "engram": {"layer_ids": [1, 15], "max_ngram_size": 3, "n_head_per_ngram": 8,
//              "n_embed_per_ngram": 512, "engram_vocab_size": [646400, 646400],
//              "kernel_size": 4, "pad_id": 2, "seed": 0}
//   kernel_size, pad_id and seed default to 4, 2 and 0 (the reference demo's values).
//   The n-gram hash constants are NOT config: each Engram layer stores them as checkpoint
//   tensors `layers.N.engram.multipliers` [max_ngram_size] (odd per-layer multipliers,
//   drawn from `seed` by the reference code's RNG) and `layers.N.engram.head_sizes`
//   [(max_ngram_size-1)·n_head_per_ngram] (the per-head prime moduli = table rows per head,
//   orders 2..N, heads inner). engram_head_sizes() recomputes the latter from the config so
//   the schema knows the embedding table's row count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu-kernels/router.h"  // ScoringFunc

namespace strata {

enum class Arch { DeepseekV3, DeepseekV32, DeepseekV4 };

std::string_view arch_name(Arch a);               // "deepseek_v3" | "deepseek_v32" | "deepseek_v4"
std::string_view scoring_func_name(ScoringFunc f);  // "softmax" | "sigmoid" | "sqrtsoftplus"

struct RopeScaling {
  std::string type;  // "" (none) | "yarn"
  double factor = 1;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32, beta_slow = 1, mscale = 1, mscale_all_dim = 0;
  bool operator==(const RopeScaling&) const = default;
};

struct EngramConfig {
  bool enabled = false;
  std::vector<int> layer_ids;
  int max_ngram_size = 3;      // n-gram orders 2..max_ngram_size
  int n_head_per_ngram = 8;
  int n_embed_per_ngram = 512;  // split over the heads: n_embed_per_ngram / n_head_per_ngram per head
  std::vector<int64_t> vocab_sizes;  // table rows per n-gram order 2..N (before the prime search)
  int kernel_size = 4;          // causal depthwise conv, dilation = max_ngram_size
  int pad_id = 2;
  int64_t seed = 0;
  bool operator==(const EngramConfig&) const = default;
};

// `quantization_config` of an HF checkpoint (FP8 block quantization). The keys named below
// are parsed; `raw` keeps the object's other keys verbatim (written back by to_hf_config_json).
struct QuantizationConfig {
  bool present = false;
  std::string quant_method;  // "fp8"
  std::string fmt;           // "e4m3"
  std::string scale_fmt;     // "" | "ue8m0"
  std::string activation_scheme;
  std::vector<int64_t> weight_block_size;  // [128, 128]
  nlohmann::json raw = nlohmann::json::object();
  bool operator==(const QuantizationConfig&) const = default;
};

struct ModelConfig {
  Arch arch = Arch::DeepseekV3;
  std::string source;  // the file (or description) it came from, for error messages

  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, moe_intermediate_size = 0;
  int64_t num_hidden_layers = 0, num_nextn_predict_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0;
  int64_t q_lora_rank = 0;  // 0 = no q LoRA (plain wq)
  int64_t kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  int64_t n_routed_experts = 0, n_shared_experts = 0, num_experts_per_tok = 0;
  int64_t n_group = 1, topk_group = 1, first_k_dense_replace = 0, moe_layer_freq = 1;
  ScoringFunc scoring_func = ScoringFunc::Sigmoid;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1;
  std::string topk_method = "noaux_tc";  // "noaux_tc" | "greedy" | "group_limited_greedy"
  double rms_norm_eps = 1e-6, rope_theta = 10000;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 4096;
  int64_t bos_token_id = 0, eos_token_id = 1;
  // The ids after the first of an eos_token_id list (and of generation_config.json's):
  // generation stops on each of them too.
  std::vector<int64_t> extra_eos_token_ids;
  bool tie_word_embeddings = false;

  // V3.2 / V4 lightning indexer (0 = none)
  int64_t index_n_heads = 0, index_head_dim = 0, index_topk = 0;

  // V4
  int64_t head_dim = 0;  // q/k/v head dim (rope on the last qk_rope_head_dim dims)
  int64_t hc_mult = 0, hc_sinkhorn_iters = 0;
  double hc_eps = 0;
  std::vector<int64_t> compress_ratios;  // per layer (then per MTP layer): 0 none, 4 overlapped + indexer, 128 ...
  double compress_rope_theta = 0;
  int64_t sliding_window = 0, o_groups = 0, o_lora_rank = 0, num_hash_layers = 0;
  double swiglu_limit = 0;
  std::string expert_dtype;  // "" | "fp4"

  QuantizationConfig quantization;
  EngramConfig engram;

  bool operator==(const ModelConfig&) const = default;

  bool is_v4() const { return arch == Arch::DeepseekV4; }
  // V3/V3.2: layer >= first_k_dense_replace && layer % moe_layer_freq == 0; V4: every layer.
  bool is_moe_layer(int64_t layer) const;
  // V4: compress ratio of layer (MTP layers follow the main layers); 0 past the list's end.
  int64_t compress_ratio(int64_t layer) const;
  // V4: the first num_hash_layers layers route by token id (ffn.gate.tid2eid).
  bool is_hash_layer(int64_t layer) const { return is_v4() && layer < num_hash_layers; }
  bool is_engram_layer(int64_t layer) const;
  int64_t qk_head_dim() const { return is_v4() ? head_dim : qk_nope_head_dim + qk_rope_head_dim; }
};

// Reads and validates config.json. strata::Error names the file (and the byte offset) on bad
// JSON, and the file and key on a missing, mistyped or inconsistent value.
ModelConfig load_hf_config(const std::filesystem::path& config_json);
ModelConfig parse_hf_config(const nlohmann::json& j, const std::string& source);
// The eos_token_id (an id or a list) of a generation_config.json beside config.json, added to
// c's stop ids; its ids must be inside c's vocabulary (else strata::Error naming the file, the
// key and the ids). Its other keys (sampling defaults) are not read.
void add_generation_config_eos(ModelConfig& c, const std::filesystem::path& generation_config_json);
// The config.json object of c (model_type, architectures and every field parse reads).
nlohmann::json to_hf_config_json(const ModelConfig& c);

// From GGUF metadata (key -> value, as GgufFile::metadata_json() gives it) of
// general.architecture "deepseek2". Both MLA conventions of llama.cpp are read: newer files
// carry attention.key_length_mla / value_length_mla (nope+rope, v_head_dim) beside
// key_length / value_length = kv_lora+rope / kv_lora; older files carry nope+rope / v_head_dim
// in key_length / value_length. attention.indexer.{head_count,key_length,top_k} make it V3.2.
ModelConfig config_from_gguf_metadata(const nlohmann::json& md, const std::string& source);
// The inverse for V3/V3.2-shaped configs (newer MLA convention); plain JSON values, typed by
// the GGUF writer. Throws strata::Error for a V4 config (no deepseek2 form).
nlohmann::json to_gguf_metadata(const ModelConfig& c);

// Checks every consistency rule; throws strata::Error naming c.source and the keys involved.
void validate_config(const ModelConfig& c);

// Engram: per listed layer, the per-head table sizes (orders 2..N, heads inner): for each
// order the first unused primes above vocab_sizes[order-2]-1, one per head, unique across all
// heads of all layers (taken in layer_ids order).
std::map<int, std::vector<int64_t>> engram_head_sizes(const EngramConfig& e);

}  // namespace strata
