#include "runtime/tiny/tiny_model.h"

namespace strata {

// Tiny but complete configs: every mechanism of the architecture is exercised (q LoRA,
// YaRN, dense + MoE layers, group-limited routing with a selection bias, shared experts,
// the V3.2 indexer with a top-k smaller than a short prompt, V4's compressed layers and
// hash routing) at dimensions that keep a model to a few MB.
nlohmann::json tiny_config_json(Arch arch, bool engram, int64_t vocab_size) {
  nlohmann::json c = {
      {"vocab_size", vocab_size},
      {"hidden_size", 64},
      {"intermediate_size", 256},  // dense down-projection rows of 256: whole Q4_K/Q5_K/Q6_K blocks
      {"moe_intermediate_size", 32},
      {"num_hidden_layers", 3},
      {"num_nextn_predict_layers", 0},
      {"num_attention_heads", 4},
      {"num_key_value_heads", 4},
      {"n_routed_experts", 8},
      {"n_shared_experts", 1},
      {"num_experts_per_tok", 2},
      {"n_group", 2},
      {"topk_group", 1},
      {"topk_method", "noaux_tc"},
      {"scoring_func", "sigmoid"},
      {"norm_topk_prob", true},
      {"routed_scaling_factor", 2.5},
      {"first_k_dense_replace", 1},
      {"moe_layer_freq", 1},
      {"q_lora_rank", 32},
      {"kv_lora_rank", 32},
      {"qk_nope_head_dim", 16},
      {"qk_rope_head_dim", 8},
      {"v_head_dim", 16},
      {"rms_norm_eps", 1e-6},
      {"rope_theta", 10000.0},
      {"max_position_embeddings", 1024},
      {"rope_scaling",
       {{"type", "yarn"},
        {"factor", 4.0},
        {"original_max_position_embeddings", 256},
        {"beta_fast", 32},
        {"beta_slow", 1},
        {"mscale", 1.0},
        {"mscale_all_dim", 1.0}}},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"tie_word_embeddings", false},
      {"hidden_act", "silu"},
      {"torch_dtype", "bfloat16"},
  };
  switch (arch) {
    case Arch::DeepseekV3:
      c["model_type"] = "deepseek_v3";
      c["architectures"] = {"DeepseekV3ForCausalLM"};
      break;
    case Arch::DeepseekV32:
      c["model_type"] = "deepseek_v32";
      c["architectures"] = {"DeepseekV32ForCausalLM"};
      c["index_n_heads"] = 4;
      c["index_head_dim"] = 32;
      c["index_topk"] = 4;
      break;
    case Arch::DeepseekV4:
      // No MLA up-projection and no dense layers: one head_dim for q/k/v, every layer MoE.
      for (const char* k : {"intermediate_size", "kv_lora_rank", "qk_nope_head_dim", "v_head_dim", "n_group",
                            "topk_group", "first_k_dense_replace", "moe_layer_freq"})
        c.erase(k);
      c["model_type"] = "deepseek_v4";
      c["architectures"] = {"DeepseekV4ForCausalLM"};
      c["num_hidden_layers"] = 4;
      c["num_key_value_heads"] = 1;
      // head_dim - rope = 64: one whole FP8 block of 64 for the KV quantize-dequantize step.
      c["head_dim"] = 72;
      c["qk_rope_head_dim"] = 8;
      c["o_groups"] = 2;
      c["o_lora_rank"] = 16;
      c["sliding_window"] = 8;
      // Uncompressed, overlapped ratio-4 (with indexer) and a plain ratio-8 layer, so short
      // prompts reach every attention path.
      c["compress_ratios"] = {0, 4, 8, 4};
      c["compress_rope_theta"] = 160000.0;
      c["hc_mult"] = 4;
      c["hc_sinkhorn_iters"] = 20;
      c["hc_eps"] = 1e-6;
      c["index_n_heads"] = 4;
      c["index_head_dim"] = 32;  // one FP4 block of 32
      c["index_topk"] = 2;       // below the compressed rows of a 12-token prompt
      c["num_hash_layers"] = 1;
      c["scoring_func"] = "sqrtsoftplus";
      c["swiglu_limit"] = 10.0;
      c["routed_scaling_factor"] = 1.5;
      break;
  }
  if (engram) {
    c["engram"] = {{"layer_ids", {1}},      {"max_ngram_size", 3}, {"n_head_per_ngram", 2},
                   {"n_embed_per_ngram", 16}, {"engram_vocab_size", {509, 521}}, {"kernel_size", 4},
                   {"pad_id", 2}};
  }
  return c;
}

}  // namespace strata
