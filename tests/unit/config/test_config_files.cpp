// The published full-size configs: parse, spot checks, round trips, parameter counts.
#include <gtest/gtest.h>

#include <cstdio>

#include "runtime/config/model_config.h"
#include "runtime/model/schema.h"
#include "tests/support/test_support.h"
#include "tests/unit/config/config_test_util.h"

namespace strata {
namespace {

using test::data_config;

TEST(ConfigFiles, DeepSeekV3) {
  const ModelConfig c = load_hf_config(data_config("deepseek-v3-671b"));
  EXPECT_EQ(c.arch, Arch::DeepseekV3);
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.scoring_func, ScoringFunc::Sigmoid);
  EXPECT_DOUBLE_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.rope_scaling.type, "yarn");
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 40);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rope_scaling.mscale_all_dim, 1.0);
  EXPECT_TRUE(c.quantization.present);
  EXPECT_EQ(c.quantization.fmt, "e4m3");
  EXPECT_EQ(c.quantization.weight_block_size, (std::vector<int64_t>{128, 128}));
  EXPECT_FALSE(c.is_moe_layer(2));
  EXPECT_TRUE(c.is_moe_layer(3));
  EXPECT_TRUE(c.is_moe_layer(60));
  EXPECT_EQ(c.source, data_config("deepseek-v3-671b"));
}

TEST(ConfigFiles, DeepSeekV32) {
  const ModelConfig c = load_hf_config(data_config("deepseek-v3.2"));
  EXPECT_EQ(c.arch, Arch::DeepseekV32);
  EXPECT_EQ(c.index_n_heads, 64);
  EXPECT_EQ(c.index_head_dim, 128);
  EXPECT_EQ(c.index_topk, 2048);
  EXPECT_EQ(c.hidden_size, 7168);
}

TEST(ConfigFiles, DeepSeekV4Flash) {
  const ModelConfig c = load_hf_config(data_config("deepseek-v4-flash"));
  EXPECT_EQ(c.arch, Arch::DeepseekV4);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_hidden_layers, 43);
  EXPECT_EQ(c.head_dim, 512);
  EXPECT_EQ(c.qk_head_dim(), 512);
  EXPECT_EQ(c.hc_mult, 4);
  EXPECT_EQ(c.hc_sinkhorn_iters, 20);
  EXPECT_EQ(c.o_groups, 8);
  EXPECT_EQ(c.num_hash_layers, 3);
  EXPECT_EQ(c.scoring_func, ScoringFunc::SqrtSoftplus);
  EXPECT_EQ(c.expert_dtype, "fp4");
  EXPECT_EQ(c.quantization.scale_fmt, "ue8m0");
  ASSERT_EQ(c.compress_ratios.size(), 44u);
  EXPECT_EQ(c.compress_ratio(0), 0);
  EXPECT_EQ(c.compress_ratio(2), 4);
  EXPECT_EQ(c.compress_ratio(3), 128);
  EXPECT_EQ(c.compress_ratio(42), 4);
  EXPECT_EQ(c.compress_ratio(43), 0);  // the MTP layer
  EXPECT_EQ(c.compress_ratio(99), 0);
  EXPECT_TRUE(c.is_hash_layer(2));
  EXPECT_FALSE(c.is_hash_layer(3));
  EXPECT_TRUE(c.is_moe_layer(0));
  EXPECT_DOUBLE_EQ(c.compress_rope_theta, 160000);
  EXPECT_DOUBLE_EQ(c.swiglu_limit, 10);
}

TEST(ConfigFiles, DeepSeekV4Pro) {
  const ModelConfig c = load_hf_config(data_config("deepseek-v4-pro"));
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.n_routed_experts, 384);
  EXPECT_EQ(c.o_groups, 16);
  EXPECT_EQ(c.index_topk, 1024);
  EXPECT_EQ(c.compress_ratio(0), 128);
  EXPECT_EQ(c.compress_ratio(1), 128);
  EXPECT_EQ(c.compress_ratio(60), 4);
  EXPECT_EQ(c.compress_ratios.size(), 62u);
}

TEST(ConfigFiles, HfJsonRoundTrip) {
  for (const char* name : {"deepseek-v3-671b", "deepseek-v3.2", "deepseek-v4-flash", "deepseek-v4-pro"}) {
    const ModelConfig c = load_hf_config(data_config(name));
    const ModelConfig back = parse_hf_config(to_hf_config_json(c), c.source);
    EXPECT_EQ(back, c) << name;
  }
  for (const nlohmann::json& j : {test::tiny_v3(), test::tiny_v32(), test::tiny_v4()}) {
    const ModelConfig c = parse_hf_config(j, "tiny.json");
    EXPECT_EQ(parse_hf_config(to_hf_config_json(c), "tiny.json"), c);
  }
}

TEST(ConfigFiles, RoundTripKeepsExtraQuantizationKeysAndEngram) {
  nlohmann::json j = test::tiny_v4();
  j["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"custom", {1, 2}}};
  j["engram"] = {{"layer_ids", {1, 3}},      {"max_ngram_size", 3},           {"n_head_per_ngram", 2},
                 {"n_embed_per_ngram", 8},   {"engram_vocab_size", {10, 20}}, {"seed", 7}};
  const ModelConfig c = parse_hf_config(j, "e.json");
  EXPECT_EQ(c.quantization.raw, (nlohmann::json{{"custom", {1, 2}}}));
  EXPECT_TRUE(c.engram.enabled);
  EXPECT_EQ(c.engram.kernel_size, 4);  // default
  EXPECT_EQ(c.engram.pad_id, 2);       // default
  EXPECT_EQ(c.engram.seed, 7);
  const nlohmann::json out = to_hf_config_json(c);
  EXPECT_EQ(out["quantization_config"]["custom"], (nlohmann::json{1, 2}));
  EXPECT_EQ(parse_hf_config(out, "e.json"), c);
  // A changed field changes the comparison (the round trip test can fail).
  ModelConfig d = c;
  d.engram.seed = 8;
  EXPECT_NE(parse_hf_config(to_hf_config_json(d), "e.json"), c);
}

TEST(ConfigFiles, DefaultsWhereHfHasThem) {
  nlohmann::json j = test::tiny_v3();
  for (const char* k : {"num_key_value_heads", "rms_norm_eps", "rope_theta", "rope_scaling", "max_position_embeddings",
                        "bos_token_id", "eos_token_id", "tie_word_embeddings", "num_nextn_predict_layers",
                        "moe_layer_freq", "scoring_func", "topk_method"})
    j.erase(k);
  j["q_lora_rank"] = nullptr;
  const ModelConfig c = parse_hf_config(j, "d.json");
  EXPECT_EQ(c.num_key_value_heads, c.num_attention_heads);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000);
  EXPECT_TRUE(c.rope_scaling.type.empty());
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_id, 1);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);
  EXPECT_EQ(c.moe_layer_freq, 1);
  EXPECT_EQ(c.scoring_func, ScoringFunc::Sigmoid);
  EXPECT_EQ(c.topk_method, "noaux_tc");
  EXPECT_EQ(c.q_lora_rank, 0);
  nlohmann::json e = test::tiny_v3();
  e["eos_token_id"] = {7, 8};
  const ModelConfig listed = parse_hf_config(e, "e.json");
  EXPECT_EQ(listed.eos_token_id, 7);
  EXPECT_EQ(listed.extra_eos_token_ids, std::vector<int64_t>{8});  // every id ends generation
  EXPECT_EQ(parse_hf_config(to_hf_config_json(listed), "e.json"), listed);
  e["eos_token_id"] = {7, 100000};  // past the vocabulary
  STRATA_EXPECT_ERROR(parse_hf_config(e, "e.json"), "e.json", "eos_token_id [7, 100000] holds 100000");
}

TEST(ConfigFiles, GgufMetadataRoundTrip) {
  for (const char* name : {"deepseek-v3-671b", "deepseek-v3.2"}) {
    ModelConfig c = load_hf_config(data_config(name));
    const nlohmann::json md = to_gguf_metadata(c);
    EXPECT_EQ(md["general.architecture"], "deepseek2");
    EXPECT_EQ(md["deepseek2.attention.key_length"], 576);
    EXPECT_EQ(md["deepseek2.attention.value_length"], 512);
    EXPECT_EQ(md["deepseek2.attention.key_length_mla"], 192);
    EXPECT_EQ(md["deepseek2.attention.value_length_mla"], 128);
    EXPECT_EQ(md["deepseek2.expert_gating_func"], 2);
    EXPECT_EQ(md["deepseek2.leading_dense_block_count"], 3);
    ModelConfig back = config_from_gguf_metadata(md, c.source);
    c.quantization = QuantizationConfig{};  // GGUF carries no quantization_config
    EXPECT_EQ(back, c) << name;
  }
}

TEST(ConfigFiles, GgufLegacyMlaKeysAndTokenCount) {
  ModelConfig c = load_hf_config(data_config("deepseek-v3-671b"));
  nlohmann::json md = to_gguf_metadata(c);
  // Files written before the *_mla keys: key_length = nope + rope, value_length = v_head_dim.
  md.erase("deepseek2.attention.key_length_mla");
  md.erase("deepseek2.attention.value_length_mla");
  md["deepseek2.attention.key_length"] = 192;
  md["deepseek2.attention.value_length"] = 128;
  md.erase("deepseek2.vocab_size");
  md["tokenizer.ggml.tokens"] = nlohmann::json::array();
  for (int i = 0; i < 129280; ++i) md["tokenizer.ggml.tokens"].push_back("t");
  const ModelConfig back = config_from_gguf_metadata(md, "old.gguf");
  EXPECT_EQ(back.qk_nope_head_dim, 128);
  EXPECT_EQ(back.v_head_dim, 128);
  EXPECT_EQ(back.vocab_size, 129280);
  md["deepseek2.expert_gating_func"] = 1;
  EXPECT_EQ(config_from_gguf_metadata(md, "old.gguf").scoring_func, ScoringFunc::Softmax);
}

TEST(ConfigFiles, GgufErrors) {
  const ModelConfig v4 = load_hf_config(data_config("deepseek-v4-flash"));
  STRATA_EXPECT_ERROR(to_gguf_metadata(v4), "deepseek_v4", "GGUF");
  nlohmann::json md = to_gguf_metadata(load_hf_config(data_config("deepseek-v3-671b")));
  nlohmann::json a = md;
  a["general.architecture"] = "llama";
  STRATA_EXPECT_ERROR(config_from_gguf_metadata(a, "m.gguf"), "m.gguf", "general.architecture", "llama");
  nlohmann::json b = md;
  b.erase("deepseek2.attention.kv_lora_rank");
  STRATA_EXPECT_ERROR(config_from_gguf_metadata(b, "m.gguf"), "m.gguf", "missing key 'deepseek2.attention.kv_lora_rank'");
  nlohmann::json g = md;
  g["deepseek2.expert_gating_func"] = 7;
  STRATA_EXPECT_ERROR(config_from_gguf_metadata(g, "m.gguf"), "m.gguf", "expert_gating_func");
  nlohmann::json v = md;
  v.erase("deepseek2.vocab_size");
  STRATA_EXPECT_ERROR(config_from_gguf_metadata(v, "m.gguf"), "m.gguf", "vocab_size");
}

TEST(ConfigFiles, ParamCounts) {
  struct Case {
    const char* name;
    double total_lo, total_hi, active_lo, active_hi;
  };
  for (const Case& k : {Case{"deepseek-v3-671b", 665e9, 675e9, 36e9, 38.5e9},
                        Case{"deepseek-v3.2", 665e9, 680e9, 36e9, 39e9},
                        Case{"deepseek-v4-flash", 275e9, 290e9, 11e9, 15e9},
                        Case{"deepseek-v4-pro", 1.55e12, 1.65e12, 45e9, 52e9}}) {
    const ModelConfig c = load_hf_config(data_config(k.name));
    const ParamCounts p = count_params(c);
    std::printf("[params] %s total %lld active %lld\n", k.name, static_cast<long long>(p.total),
                static_cast<long long>(p.active));
    EXPECT_GE(p.total, k.total_lo) << k.name;
    EXPECT_LE(p.total, k.total_hi) << k.name;
    EXPECT_GE(p.active, k.active_lo) << k.name;
    EXPECT_LE(p.active, k.active_hi) << k.name;
  }
}

}  // namespace
}  // namespace strata
