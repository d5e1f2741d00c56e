// GGUF `deepseek2.*` metadata <-> ModelConfig (llama.cpp's conventions for DeepSeek-V2/V3).
#include <cmath>

#include "runtime/common/error.h"
#include "runtime/config/json_fields.h"
#include "runtime/config/model_config.h"

namespace strata {

using config_detail::Fields;
using nlohmann::json;

namespace {

constexpr const char* kArch = "deepseek2";

std::string k(const char* name) { return std::string(kArch) + "." + name; }

}  // namespace

ModelConfig config_from_gguf_metadata(const json& md, const std::string& source) {
  Fields f(md, source);
  const std::string arch = f.req_str("general.architecture");
  if (arch != kArch)
    f.fail("general.architecture", "is '" + arch + "'; strata reads DeepSeek GGUF files of architecture deepseek2");

  ModelConfig c;
  c.source = source;
  c.hidden_size = f.req_int(k("embedding_length"));
  c.num_hidden_layers = f.req_int(k("block_count"));
  c.num_nextn_predict_layers = f.opt_int(k("nextn_predict_layers"), 0);
  if (c.num_nextn_predict_layers > 0 && c.num_nextn_predict_layers < c.num_hidden_layers) {
    // llama.cpp counts the MTP blocks in block_count.
    c.num_hidden_layers -= c.num_nextn_predict_layers;
  }
  c.intermediate_size = f.req_int(k("feed_forward_length"));
  c.moe_intermediate_size = f.req_int(k("expert_feed_forward_length"));
  c.num_attention_heads = f.req_int(k("attention.head_count"));
  c.num_key_value_heads = c.num_attention_heads;  // MLA: one K/V head per query head once expanded
  c.q_lora_rank = f.opt_int(k("attention.q_lora_rank"), 0);
  c.kv_lora_rank = f.req_int(k("attention.kv_lora_rank"));
  c.qk_rope_head_dim = f.req_int(k("rope.dimension_count"));
  if (f.has(k("attention.key_length_mla"))) {
    c.qk_nope_head_dim = f.req_int(k("attention.key_length_mla")) - c.qk_rope_head_dim;
    c.v_head_dim = f.req_int(k("attention.value_length_mla"));
  } else {
    c.qk_nope_head_dim = f.req_int(k("attention.key_length")) - c.qk_rope_head_dim;
    c.v_head_dim = f.req_int(k("attention.value_length"));
  }
  c.rms_norm_eps = f.req_num(k("attention.layer_norm_rms_epsilon"));
  c.rope_theta = f.opt_num(k("rope.freq_base"), 10000);
  c.max_position_embeddings = f.opt_int(k("context_length"), 4096);

  if (f.has(k("rope.scaling.type"))) {
    const std::string type = f.req_str(k("rope.scaling.type"));
    if (type == "yarn") {
      RopeScaling& r = c.rope_scaling;
      r.type = "yarn";
      r.factor = f.req_num(k("rope.scaling.factor"));
      r.original_max_position_embeddings = f.req_int(k("rope.scaling.original_context_length"));
      // convert_hf_to_gguf writes 0.1 * mscale_all_dim; HF's mscale is 1 in every DeepSeek config.
      r.mscale_all_dim = f.opt_num(k("rope.scaling.yarn_log_multiplier"), 0) * 10.0;
      r.mscale = 1;
      r.beta_fast = f.opt_num(k("rope.scaling.yarn_beta_fast"), 32);
      r.beta_slow = f.opt_num(k("rope.scaling.yarn_beta_slow"), 1);
    } else if (type != "none") {
      f.fail(k("rope.scaling.type"), "'" + type + "' is not supported (yarn or none)");
    }
  }

  c.n_routed_experts = f.req_int(k("expert_count"));
  c.num_experts_per_tok = f.req_int(k("expert_used_count"));
  c.n_shared_experts = f.opt_int(k("expert_shared_count"), 0);
  c.n_group = f.opt_int(k("expert_group_count"), 1);
  c.topk_group = f.opt_int(k("expert_group_used_count"), 1);
  c.first_k_dense_replace = f.opt_int(k("leading_dense_block_count"), 0);
  c.routed_scaling_factor = f.opt_num(k("expert_weights_scale"), 1);
  c.norm_topk_prob = f.opt_bool(k("expert_weights_norm"), false);
  // llama.cpp: 1 softmax, 2 sigmoid; files older than the key are DeepSeek-V2 (softmax).
  const int64_t gating = f.opt_int(k("expert_gating_func"), 1);
  if (gating == 1) {
    c.scoring_func = ScoringFunc::Softmax;
    c.topk_method = c.n_group > 1 ? "group_limited_greedy" : "greedy";
  } else if (gating == 2) {
    c.scoring_func = ScoringFunc::Sigmoid;
    c.topk_method = "noaux_tc";  // sigmoid gating comes with the selection bias (exp_probs_b)
  } else {
    f.fail(k("expert_gating_func"), "= " + std::to_string(gating) + " is not supported (1 softmax, 2 sigmoid)");
  }

  std::string vocab_from = k("vocab_size");
  if (f.has(k("vocab_size"))) {
    c.vocab_size = f.req_int(k("vocab_size"));
  } else if (const json* toks = f.get("tokenizer.ggml.tokens"); toks && toks->is_array()) {
    c.vocab_size = static_cast<int64_t>(toks->size());
    vocab_from = "tokenizer.ggml.tokens";
  } else {
    f.missing(k("vocab_size") + "' (or 'tokenizer.ggml.tokens");
  }
  c.bos_token_id = f.opt_int("tokenizer.ggml.bos_token_id", 0);
  c.eos_token_id = f.opt_int("tokenizer.ggml.eos_token_id", 1);
  // Named by their GGUF keys (validate_config would name the HF ones).
  for (const auto& [key, id] :
       {std::pair<const char*, int64_t>{"tokenizer.ggml.bos_token_id", c.bos_token_id},
        std::pair<const char*, int64_t>{"tokenizer.ggml.eos_token_id", c.eos_token_id}})
    if (c.vocab_size > 0 && id >= c.vocab_size)
      f.fail(key, "= " + std::to_string(id) + " is past the vocabulary of " + std::to_string(c.vocab_size) +
                      " tokens ('" + vocab_from + "')");
  c.tie_word_embeddings = false;

  if (f.has(k("attention.indexer.head_count"))) {
    c.arch = Arch::DeepseekV32;
    c.index_n_heads = f.req_int(k("attention.indexer.head_count"));
    c.index_head_dim = f.req_int(k("attention.indexer.key_length"));
    c.index_topk = f.req_int(k("attention.indexer.top_k"));
  } else {
    c.arch = Arch::DeepseekV3;
  }
  validate_config(c);
  return c;
}

// Counts, lengths and ids as GGUF UINT32, the type llama.cpp-family readers require for them.
uint32_t u32(const ModelConfig& c, const char* field, int64_t v) {
  if (v < 0 || v > int64_t{UINT32_MAX})
    throw Error((c.source.empty() ? std::string("config") : c.source) + ": " + field + " = " + std::to_string(v) +
                " does not fit the GGUF UINT32 it is written as");
  return static_cast<uint32_t>(v);
}

json to_gguf_metadata(const ModelConfig& c) {
  if (c.is_v4() || c.engram.enabled)
    throw Error((c.source.empty() ? std::string("config") : c.source) + ": " + std::string(arch_name(c.arch)) +
                (c.engram.enabled ? " with Engram" : "") + " has no GGUF deepseek2 form");
  json m = json::object();
  m["general.architecture"] = kArch;
  m[k("block_count")] = u32(c, "num_hidden_layers", c.num_hidden_layers);
  m[k("context_length")] = u32(c, "max_position_embeddings", c.max_position_embeddings);
  m[k("embedding_length")] = u32(c, "hidden_size", c.hidden_size);
  m[k("feed_forward_length")] = u32(c, "intermediate_size", c.intermediate_size);
  m[k("expert_feed_forward_length")] = u32(c, "moe_intermediate_size", c.moe_intermediate_size);
  m[k("attention.head_count")] = u32(c, "num_attention_heads", c.num_attention_heads);
  m[k("attention.head_count_kv")] = uint32_t{1};  // MLA stored in MQA form (latent shared by all heads)
  if (c.q_lora_rank > 0) m[k("attention.q_lora_rank")] = u32(c, "q_lora_rank", c.q_lora_rank);
  m[k("attention.kv_lora_rank")] = u32(c, "kv_lora_rank", c.kv_lora_rank);
  m[k("attention.key_length")] = u32(c, "kv_lora_rank", c.kv_lora_rank + c.qk_rope_head_dim);
  m[k("attention.value_length")] = u32(c, "kv_lora_rank", c.kv_lora_rank);
  m[k("attention.key_length_mla")] = u32(c, "qk_nope_head_dim", c.qk_nope_head_dim + c.qk_rope_head_dim);
  m[k("attention.value_length_mla")] = u32(c, "v_head_dim", c.v_head_dim);
  m[k("attention.layer_norm_rms_epsilon")] = c.rms_norm_eps;
  m[k("rope.dimension_count")] = u32(c, "qk_rope_head_dim", c.qk_rope_head_dim);
  m[k("rope.freq_base")] = c.rope_theta;
  if (c.rope_scaling.type == "yarn") {
    m[k("rope.scaling.type")] = "yarn";
    m[k("rope.scaling.factor")] = c.rope_scaling.factor;
    m[k("rope.scaling.original_context_length")] =
        u32(c, "rope_scaling.original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings);
    m[k("rope.scaling.yarn_log_multiplier")] = 0.1 * c.rope_scaling.mscale_all_dim;
    m[k("rope.scaling.yarn_beta_fast")] = c.rope_scaling.beta_fast;
    m[k("rope.scaling.yarn_beta_slow")] = c.rope_scaling.beta_slow;
  }
  m[k("leading_dense_block_count")] = u32(c, "first_k_dense_replace", c.first_k_dense_replace);
  m[k("expert_count")] = u32(c, "n_routed_experts", c.n_routed_experts);
  m[k("expert_used_count")] = u32(c, "num_experts_per_tok", c.num_experts_per_tok);
  m[k("expert_shared_count")] = u32(c, "n_shared_experts", c.n_shared_experts);
  m[k("expert_group_count")] = u32(c, "n_group", c.n_group);
  m[k("expert_group_used_count")] = u32(c, "topk_group", c.topk_group);
  m[k("expert_weights_scale")] = c.routed_scaling_factor;
  m[k("expert_weights_norm")] = c.norm_topk_prob;
  m[k("expert_gating_func")] = c.scoring_func == ScoringFunc::Sigmoid ? uint32_t{2} : uint32_t{1};
  m[k("vocab_size")] = u32(c, "vocab_size", c.vocab_size);
  if (c.num_nextn_predict_layers > 0) {
    m[k("nextn_predict_layers")] = u32(c, "num_nextn_predict_layers", c.num_nextn_predict_layers);
    m[k("block_count")] = u32(c, "num_hidden_layers", c.num_hidden_layers + c.num_nextn_predict_layers);
  }
  if (c.arch == Arch::DeepseekV32) {
    m[k("attention.indexer.head_count")] = u32(c, "index_n_heads", c.index_n_heads);
    m[k("attention.indexer.key_length")] = u32(c, "index_head_dim", c.index_head_dim);
    m[k("attention.indexer.top_k")] = u32(c, "index_topk", c.index_topk);
  }
  if (c.bos_token_id >= 0) m["tokenizer.ggml.bos_token_id"] = u32(c, "bos_token_id", c.bos_token_id);
  if (c.eos_token_id >= 0) m["tokenizer.ggml.eos_token_id"] = u32(c, "eos_token_id", c.eos_token_id);
  return m;
}

}  // namespace strata
