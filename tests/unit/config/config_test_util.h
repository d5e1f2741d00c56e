// Small configs of each architecture for the config and schema tests.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace strata::test {

inline std::string data_config(const std::string& name) {
  return std::string(STRATA_TEST_DATA) + "/configs/" + name + ".json";
}

// V3: 4 layers (first 1 dense), q LoRA, 8 experts in 2 groups, YaRN.
inline nlohmann::json tiny_v3() {
  return nlohmann::json::parse(R"({
    "model_type": "deepseek_v3", "vocab_size": 100, "hidden_size": 16, "intermediate_size": 40,
    "moe_intermediate_size": 8, "num_hidden_layers": 4, "num_nextn_predict_layers": 1,
    "num_attention_heads": 2, "num_key_value_heads": 2, "q_lora_rank": 12, "kv_lora_rank": 6,
    "qk_nope_head_dim": 4, "qk_rope_head_dim": 2, "v_head_dim": 3, "n_routed_experts": 8,
    "n_shared_experts": 2, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
    "first_k_dense_replace": 1, "moe_layer_freq": 1, "scoring_func": "sigmoid", "norm_topk_prob": true,
    "routed_scaling_factor": 2.5, "topk_method": "noaux_tc", "rms_norm_eps": 1e-6, "rope_theta": 10000,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 64,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "max_position_embeddings": 2560, "bos_token_id": 0, "eos_token_id": 1, "tie_word_embeddings": false
  })");
}

inline nlohmann::json tiny_v32() {
  nlohmann::json j = tiny_v3();
  j["model_type"] = "deepseek_v32";
  j["index_n_heads"] = 2;
  j["index_head_dim"] = 4;
  j["index_topk"] = 8;
  return j;
}

// V4: 4 layers with ratios 0, 4, 128, 4 (+ MTP 0), 2 hash layers, hc 2.
inline nlohmann::json tiny_v4() {
  return nlohmann::json::parse(R"({
    "model_type": "deepseek_v4", "vocab_size": 100, "hidden_size": 16, "moe_intermediate_size": 8,
    "num_hidden_layers": 4, "num_nextn_predict_layers": 1, "num_attention_heads": 4,
    "num_key_value_heads": 1, "q_lora_rank": 12, "qk_rope_head_dim": 2, "head_dim": 8,
    "o_groups": 2, "o_lora_rank": 5, "n_routed_experts": 4, "n_shared_experts": 1,
    "num_experts_per_tok": 2, "scoring_func": "sqrtsoftplus", "norm_topk_prob": true,
    "routed_scaling_factor": 1.5, "topk_method": "noaux_tc", "rms_norm_eps": 1e-6, "rope_theta": 10000,
    "sliding_window": 8, "compress_ratios": [0, 4, 128, 4, 0], "compress_rope_theta": 160000,
    "hc_mult": 2, "hc_sinkhorn_iters": 20, "hc_eps": 1e-6, "index_n_heads": 2, "index_head_dim": 4,
    "index_topk": 4, "num_hash_layers": 2, "swiglu_limit": 10.0, "max_position_embeddings": 256,
    "expert_dtype": "fp4"
  })");
}

}  // namespace strata::test
