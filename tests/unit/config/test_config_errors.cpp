// Every validation rule: the error names the file and the keys involved.
#include <gtest/gtest.h>

#include "runtime/config/model_config.h"
#include "tests/support/test_support.h"
#include "tests/unit/config/config_test_util.h"

namespace strata {
namespace {

using nlohmann::json;
using test::tiny_v3;
using test::tiny_v32;
using test::tiny_v4;

json engram_block() {
  return json{{"layer_ids", {1, 3}},    {"max_ngram_size", 3},           {"n_head_per_ngram", 2},
              {"n_embed_per_ngram", 8}, {"engram_vocab_size", {10, 20}}, {"kernel_size", 4}};
}

TEST(ConfigErrors, BadJsonNamesFileAndOffset) {
  test::ScratchDir dir("config_errors");
  test::write_text(dir / "config.json", "{\"model_type\": \"deepseek_v3\",\n  \"vocab_size\": 12,, }");
  STRATA_EXPECT_ERROR(load_hf_config(dir / "config.json"), (dir / "config.json").string(), "offset");
  test::write_text(dir / "dup.json", "{\"model_type\": \"deepseek_v3\", \"model_type\": \"deepseek_v3\"}");
  STRATA_EXPECT_ERROR(load_hf_config(dir / "dup.json"), "dup.json", "model_type");
  STRATA_EXPECT_ERROR(load_hf_config(dir / "absent.json"), "absent.json");
  test::write_text(dir / "array.json", "[1, 2]");
  STRATA_EXPECT_ERROR(load_hf_config(dir / "array.json"), "array.json", "object");
}

TEST(ConfigErrors, MissingKey) {
  for (const char* key : {"model_type", "hidden_size", "vocab_size", "kv_lora_rank", "q_lora_rank",
                          "first_k_dense_replace", "n_group", "norm_topk_prob", "routed_scaling_factor"}) {
    json j = tiny_v3();
    j.erase(key);
    STRATA_EXPECT_ERROR(parse_hf_config(j, "cfg.json"), "cfg.json: missing key '" + std::string(key) + "'");
  }
  for (const char* key : {"hc_mult", "compress_ratios", "head_dim", "o_groups", "index_topk", "hc_eps"}) {
    json j = tiny_v4();
    j.erase(key);
    STRATA_EXPECT_ERROR(parse_hf_config(j, "v4.json"), "v4.json: missing key '" + std::string(key) + "'");
  }
  json j = tiny_v32();
  j.erase("index_head_dim");
  STRATA_EXPECT_ERROR(parse_hf_config(j, "v32.json"), "v32.json: missing key 'index_head_dim'");
  json r = tiny_v3();
  r["rope_scaling"].erase("factor");
  STRATA_EXPECT_ERROR(parse_hf_config(r, "cfg.json"), "missing key 'rope_scaling.factor'");
  // A factor with no type would run unscaled, silently.
  json untyped = tiny_v3();
  untyped["rope_scaling"].erase("type");
  untyped["rope_scaling"].erase("rope_type");
  STRATA_EXPECT_ERROR(parse_hf_config(untyped, "cfg.json"), "rope_scaling.type");
  json e = tiny_v3();
  e["engram"] = engram_block();
  e["engram"].erase("layer_ids");
  STRATA_EXPECT_ERROR(parse_hf_config(e, "cfg.json"), "cfg.json: missing key 'engram.layer_ids'");
}

TEST(ConfigErrors, WrongType) {
  json a = tiny_v3();
  a["hidden_size"] = "16";
  STRATA_EXPECT_ERROR(parse_hf_config(a, "cfg.json"), "cfg.json", "'hidden_size'", "integer", "string");
  json b = tiny_v3();
  b["norm_topk_prob"] = 1;
  STRATA_EXPECT_ERROR(parse_hf_config(b, "cfg.json"), "'norm_topk_prob'", "boolean");
  json c = tiny_v3();
  c["rms_norm_eps"] = "small";
  STRATA_EXPECT_ERROR(parse_hf_config(c, "cfg.json"), "'rms_norm_eps'", "number");
  json d = tiny_v4();
  d["compress_ratios"] = {0, "4", 128, 4, 0};
  STRATA_EXPECT_ERROR(parse_hf_config(d, "cfg.json"), "'compress_ratios[1]'", "integer");
  json e = tiny_v3();
  e["vocab_size"] = 100.5;
  STRATA_EXPECT_ERROR(parse_hf_config(e, "cfg.json"), "'vocab_size'", "integer");
  json f = tiny_v3();
  f["rope_scaling"] = 3;
  STRATA_EXPECT_ERROR(parse_hf_config(f, "cfg.json"), "'rope_scaling'", "object");
  json g = tiny_v3();
  g["vocab_size"] = 18446744073709551615ull;
  STRATA_EXPECT_ERROR(parse_hf_config(g, "cfg.json"), "'vocab_size'", "out of range");
  json h = tiny_v3();
  h["vocab_size"] = 100.0;  // integral float accepted
  EXPECT_EQ(parse_hf_config(h, "cfg.json").vocab_size, 100);
}

TEST(ConfigErrors, UnknownValues) {
  json a = tiny_v3();
  a["model_type"] = "llama";
  STRATA_EXPECT_ERROR(parse_hf_config(a, "cfg.json"), "cfg.json", "model_type", "'llama'");
  json b = tiny_v3();
  b["scoring_func"] = "relu";
  STRATA_EXPECT_ERROR(parse_hf_config(b, "cfg.json"), "scoring_func", "relu");
  json c = tiny_v3();
  c["rope_scaling"]["type"] = "dynamic";
  STRATA_EXPECT_ERROR(parse_hf_config(c, "cfg.json"), "rope_scaling.type", "dynamic");
  json d = tiny_v3();
  d["topk_method"] = "random";
  STRATA_EXPECT_ERROR(parse_hf_config(d, "cfg.json"), "topk_method", "random");
  json e = tiny_v4();
  e["expert_dtype"] = "fp2";
  STRATA_EXPECT_ERROR(parse_hf_config(e, "cfg.json"), "expert_dtype", "fp2");
}

TEST(ConfigErrors, InconsistentRouting) {
  json a = tiny_v3();
  a["num_experts_per_tok"] = 9;
  STRATA_EXPECT_ERROR(parse_hf_config(a, "cfg.json"), "cfg.json", "num_experts_per_tok", "n_routed_experts");
  json b = tiny_v3();
  b["topk_group"] = 3;
  STRATA_EXPECT_ERROR(parse_hf_config(b, "cfg.json"), "topk_group", "n_group");
  json c = tiny_v3();
  c["n_group"] = 3;
  c["topk_group"] = 1;
  STRATA_EXPECT_ERROR(parse_hf_config(c, "cfg.json"), "n_routed_experts", "n_group", "divisible");
  json d = tiny_v3();
  d["num_experts_per_tok"] = 5;  // 1 group of 4 experts kept
  STRATA_EXPECT_ERROR(parse_hf_config(d, "cfg.json"), "num_experts_per_tok", "topk_group");
  json e = tiny_v3();
  e["first_k_dense_replace"] = 5;
  STRATA_EXPECT_ERROR(parse_hf_config(e, "cfg.json"), "first_k_dense_replace");
  json f = tiny_v3();
  f["num_key_value_heads"] = 3;
  STRATA_EXPECT_ERROR(parse_hf_config(f, "cfg.json"), "num_attention_heads", "num_key_value_heads");
}

TEST(ConfigErrors, NonPositiveDims) {
  for (const char* key : {"hidden_size", "vocab_size", "num_hidden_layers", "kv_lora_rank", "v_head_dim",
                          "moe_intermediate_size", "n_routed_experts", "num_attention_heads"}) {
    json j = tiny_v3();
    j[key] = 0;
    STRATA_EXPECT_ERROR(parse_hf_config(j, "cfg.json"), "cfg.json", key, "positive");
    j[key] = -3;
    STRATA_EXPECT_ERROR(parse_hf_config(j, "cfg.json"), "cfg.json", key);
  }
  json q = tiny_v3();
  q["q_lora_rank"] = -1;
  STRATA_EXPECT_ERROR(parse_hf_config(q, "cfg.json"), "q_lora_rank");
  json r = tiny_v3();
  r["qk_rope_head_dim"] = 3;
  STRATA_EXPECT_ERROR(parse_hf_config(r, "cfg.json"), "qk_rope_head_dim", "even");
  json h = tiny_v3();
  h["hidden_size"] = int64_t{1} << 40;
  STRATA_EXPECT_ERROR(parse_hf_config(h, "cfg.json"), "hidden_size", "out of range");
  json eps = tiny_v3();
  eps["rms_norm_eps"] = 0;
  STRATA_EXPECT_ERROR(parse_hf_config(eps, "cfg.json"), "rms_norm_eps", "out of range");
  // Scales far outside what any model uses overflow the activations: refused with the config.
  for (double bad : {1e38, 0.0, -2.5}) {
    nlohmann::json r = test::tiny_v3();
    r["routed_scaling_factor"] = bad;
    STRATA_EXPECT_ERROR(parse_hf_config(r, "cfg.json"), "cfg.json", "routed_scaling_factor", "out of range [0.001, 1000]");
  }
  json eos = tiny_v3();
  eos["eos_token_id"] = 100;
  STRATA_EXPECT_ERROR(parse_hf_config(eos, "cfg.json"), "eos_token_id");
}

TEST(ConfigErrors, ArchMismatchedKeys) {
  json a = tiny_v3();
  a["hc_mult"] = 4;
  STRATA_EXPECT_ERROR(parse_hf_config(a, "cfg.json"), "cfg.json", "hc_mult", "deepseek_v4");
  json b = tiny_v3();
  b["index_topk"] = 8;
  STRATA_EXPECT_ERROR(parse_hf_config(b, "cfg.json"), "cfg.json", "index_topk", "deepseek_v32");
  // Constructed configs go through the same rules.
  ModelConfig c = parse_hf_config(tiny_v3(), "cfg.json");
  c.index_topk = 8;
  STRATA_EXPECT_ERROR(validate_config(c), "cfg.json", "index_topk without index_n_heads");
  ModelConfig d = parse_hf_config(tiny_v3(), "cfg.json");
  d.hc_mult = 4;
  STRATA_EXPECT_ERROR(validate_config(d), "cfg.json", "hc_mult");
  ModelConfig e = parse_hf_config(tiny_v32(), "cfg.json");
  e.index_n_heads = 0;
  STRATA_EXPECT_ERROR(validate_config(e), "cfg.json", "index_topk without index_n_heads");
  json f = tiny_v32();
  f["q_lora_rank"] = nullptr;
  STRATA_EXPECT_ERROR(parse_hf_config(f, "cfg.json"), "q_lora_rank", "positive");
}

TEST(ConfigErrors, V4Rules) {
  json a = tiny_v4();
  a["compress_ratios"] = {0, 4, 128};
  STRATA_EXPECT_ERROR(parse_hf_config(a, "v4.json"), "v4.json", "compress_ratios", "num_hidden_layers");
  json ok = tiny_v4();
  ok["compress_ratios"] = {0, 4, 128, 4};  // without the MTP entry: accepted
  EXPECT_EQ(parse_hf_config(ok, "v4.json").compress_ratio(4), 0);
  json b = tiny_v4();
  b["o_groups"] = 3;
  STRATA_EXPECT_ERROR(parse_hf_config(b, "v4.json"), "num_attention_heads", "o_groups");
  json c = tiny_v4();
  c["num_hash_layers"] = 5;
  STRATA_EXPECT_ERROR(parse_hf_config(c, "v4.json"), "num_hash_layers");
  json d = tiny_v4();
  d["qk_rope_head_dim"] = 8;
  STRATA_EXPECT_ERROR(parse_hf_config(d, "v4.json"), "qk_rope_head_dim", "head_dim");
  json e = tiny_v4();
  e["compress_ratios"] = {0, -4, 128, 4, 0};
  STRATA_EXPECT_ERROR(parse_hf_config(e, "v4.json"), "compress_ratios");
  json f = tiny_v4();
  f["q_lora_rank"] = nullptr;
  STRATA_EXPECT_ERROR(parse_hf_config(f, "v4.json"), "q_lora_rank");
  json g = tiny_v4();
  g["hc_eps"] = -1;
  STRATA_EXPECT_ERROR(parse_hf_config(g, "v4.json"), "hc_eps");
}

TEST(ConfigErrors, EngramRules) {
  json a = tiny_v3();
  a["engram"] = engram_block();
  a["engram"]["layer_ids"] = {1, 4};
  STRATA_EXPECT_ERROR(parse_hf_config(a, "cfg.json"), "cfg.json", "engram.layer_ids", "4", "num_hidden_layers");
  json b = tiny_v3();
  b["engram"] = engram_block();
  b["engram"]["engram_vocab_size"] = {10};
  STRATA_EXPECT_ERROR(parse_hf_config(b, "cfg.json"), "engram.engram_vocab_size", "engram.max_ngram_size");
  json c = tiny_v3();
  c["engram"] = engram_block();
  c["engram"]["n_embed_per_ngram"] = 9;
  STRATA_EXPECT_ERROR(parse_hf_config(c, "cfg.json"), "engram.n_embed_per_ngram", "engram.n_head_per_ngram");
  json d = tiny_v3();
  d["engram"] = engram_block();
  d["engram"]["layer_ids"] = {1, 1};
  STRATA_EXPECT_ERROR(parse_hf_config(d, "cfg.json"), "engram.layer_ids", "twice");
  json e = tiny_v3();
  e["engram"] = engram_block();
  e["engram"]["max_ngram_size"] = 1;
  STRATA_EXPECT_ERROR(parse_hf_config(e, "cfg.json"), "engram.max_ngram_size");
  json f = tiny_v3();
  f["engram"] = "yes";
  STRATA_EXPECT_ERROR(parse_hf_config(f, "cfg.json"), "'engram'", "object");
  json g = tiny_v3();
  g["engram"] = engram_block();
  g["engram"]["layer_ids"] = json::array();
  STRATA_EXPECT_ERROR(parse_hf_config(g, "cfg.json"), "engram.layer_ids", "empty");
}

}  // namespace
}  // namespace strata
