#include <gtest/gtest.h>

#include "runtime/format/names.h"

namespace strata {
namespace {

struct Pair {
  const char* canonical;
  const char* stored;
};

// Every HF row of canonical_names.md (with layer 5 / expert 17 substituted).
const Pair kHf[] = {
    {"embed.weight", "model.embed_tokens.weight"},
    {"norm.weight", "model.norm.weight"},
    {"head.weight", "lm_head.weight"},
    {"layers.5.attn_norm.weight", "model.layers.5.input_layernorm.weight"},
    {"layers.5.ffn_norm.weight", "model.layers.5.post_attention_layernorm.weight"},
    {"layers.5.attn.wq.weight", "model.layers.5.self_attn.q_proj.weight"},
    {"layers.5.attn.wq_a.weight", "model.layers.5.self_attn.q_a_proj.weight"},
    {"layers.5.attn.q_norm.weight", "model.layers.5.self_attn.q_a_layernorm.weight"},
    {"layers.5.attn.wq_b.weight", "model.layers.5.self_attn.q_b_proj.weight"},
    {"layers.5.attn.wkv_a.weight", "model.layers.5.self_attn.kv_a_proj_with_mqa.weight"},
    {"layers.5.attn.kv_norm.weight", "model.layers.5.self_attn.kv_a_layernorm.weight"},
    {"layers.5.attn.wkv_b.weight", "model.layers.5.self_attn.kv_b_proj.weight"},
    {"layers.5.attn.wo.weight", "model.layers.5.self_attn.o_proj.weight"},
    {"layers.5.attn.indexer.wq_b.weight", "model.layers.5.self_attn.indexer.wq_b.weight"},
    {"layers.5.attn.indexer.wk.weight", "model.layers.5.self_attn.indexer.wk.weight"},
    {"layers.5.attn.indexer.weights_proj.weight", "model.layers.5.self_attn.indexer.weights_proj.weight"},
    {"layers.5.attn.indexer.k_norm.weight", "model.layers.5.self_attn.indexer.k_norm.weight"},
    {"layers.5.attn.indexer.k_norm.bias", "model.layers.5.self_attn.indexer.k_norm.bias"},
    {"layers.5.ffn.w1.weight", "model.layers.5.mlp.gate_proj.weight"},
    {"layers.5.ffn.w2.weight", "model.layers.5.mlp.down_proj.weight"},
    {"layers.5.ffn.w3.weight", "model.layers.5.mlp.up_proj.weight"},
    {"layers.5.ffn.gate.weight", "model.layers.5.mlp.gate.weight"},
    {"layers.5.ffn.gate.bias", "model.layers.5.mlp.gate.e_score_correction_bias"},
    {"layers.5.ffn.experts.17.w1.weight", "model.layers.5.mlp.experts.17.gate_proj.weight"},
    {"layers.5.ffn.experts.17.w2.weight", "model.layers.5.mlp.experts.17.down_proj.weight"},
    {"layers.5.ffn.experts.17.w3.weight", "model.layers.5.mlp.experts.17.up_proj.weight"},
    {"layers.5.ffn.shared_experts.w1.weight", "model.layers.5.mlp.shared_experts.gate_proj.weight"},
    {"layers.5.ffn.shared_experts.w2.weight", "model.layers.5.mlp.shared_experts.down_proj.weight"},
    {"layers.5.ffn.shared_experts.w3.weight", "model.layers.5.mlp.shared_experts.up_proj.weight"},
    // FP8 block scales.
    {"layers.5.attn.wq_a.scale", "model.layers.5.self_attn.q_a_proj.weight_scale_inv"},
    {"layers.5.ffn.experts.17.w2.scale", "model.layers.5.mlp.experts.17.down_proj.weight_scale_inv"},
    // MTP layer extras.
    {"layers.61.enorm.weight", "model.layers.61.enorm.weight"},
    {"layers.61.hnorm.weight", "model.layers.61.hnorm.weight"},
    {"layers.61.eh_proj.weight", "model.layers.61.eh_proj.weight"},
    {"layers.61.embed.weight", "model.layers.61.embed_tokens.weight"},
    {"layers.61.shared_head.norm.weight", "model.layers.61.shared_head.norm.weight"},
    {"layers.61.shared_head.head.weight", "model.layers.61.shared_head.head.weight"},
};

// Every GGUF row (non-expert).
const Pair kGguf[] = {
    {"embed.weight", "token_embd.weight"},
    {"norm.weight", "output_norm.weight"},
    {"head.weight", "output.weight"},
    {"layers.5.attn_norm.weight", "blk.5.attn_norm.weight"},
    {"layers.5.ffn_norm.weight", "blk.5.ffn_norm.weight"},
    {"layers.5.attn.wq.weight", "blk.5.attn_q.weight"},
    {"layers.5.attn.wq_a.weight", "blk.5.attn_q_a.weight"},
    {"layers.5.attn.q_norm.weight", "blk.5.attn_q_a_norm.weight"},
    {"layers.5.attn.wq_b.weight", "blk.5.attn_q_b.weight"},
    {"layers.5.attn.wkv_a.weight", "blk.5.attn_kv_a_mqa.weight"},
    {"layers.5.attn.kv_norm.weight", "blk.5.attn_kv_a_norm.weight"},
    {"layers.5.attn.wkv_b.weight", "blk.5.attn_kv_b.weight"},
    {"layers.5.attn.wk_b.weight", "blk.5.attn_k_b.weight"},
    {"layers.5.attn.wv_b.weight", "blk.5.attn_v_b.weight"},
    {"layers.5.attn.wo.weight", "blk.5.attn_output.weight"},
    {"layers.5.ffn.w1.weight", "blk.5.ffn_gate.weight"},
    {"layers.5.ffn.w2.weight", "blk.5.ffn_down.weight"},
    {"layers.5.ffn.w3.weight", "blk.5.ffn_up.weight"},
    {"layers.5.ffn.gate.weight", "blk.5.ffn_gate_inp.weight"},
    {"layers.5.ffn.gate.bias", "blk.5.exp_probs_b.bias"},
    {"layers.5.ffn.shared_experts.w1.weight", "blk.5.ffn_gate_shexp.weight"},
    {"layers.5.ffn.shared_experts.w2.weight", "blk.5.ffn_down_shexp.weight"},
    {"layers.5.ffn.shared_experts.w3.weight", "blk.5.ffn_up_shexp.weight"},
    {"layers.61.eh_proj.weight", "blk.61.nextn.eh_proj.weight"},
    {"layers.61.enorm.weight", "blk.61.nextn.enorm.weight"},
    {"layers.61.hnorm.weight", "blk.61.nextn.hnorm.weight"},
    {"layers.61.embed.weight", "blk.61.nextn.embed_tokens.weight"},
    {"layers.61.shared_head.norm.weight", "blk.61.nextn.shared_head_norm.weight"},
    {"layers.61.shared_head.head.weight", "blk.61.nextn.shared_head_head.weight"},
};

TEST(Names, HfBothWays) {
  for (const auto& p : kHf) {
    EXPECT_EQ(canonical_from_hf(p.stored), std::optional<std::string>(p.canonical)) << p.stored;
    EXPECT_EQ(hf_from_canonical(p.canonical), std::optional<std::string>(p.stored)) << p.canonical;
  }
}

TEST(Names, GgufBothWays) {
  for (const auto& p : kGguf) {
    const auto m = canonical_from_gguf(p.stored);
    ASSERT_TRUE(m) << p.stored;
    EXPECT_EQ(m->canonical, p.canonical);
    EXPECT_FALSE(m->stacked_experts);
    EXPECT_EQ(gguf_from_canonical(p.canonical), std::optional<std::string>(p.stored)) << p.canonical;
  }
}

TEST(Names, GgufStackedExperts) {
  const char* rows[][2] = {{"blk.3.ffn_gate_exps.weight", "layers.3.ffn.experts.{E}.w1.weight"},
                           {"blk.3.ffn_down_exps.weight", "layers.3.ffn.experts.{E}.w2.weight"},
                           {"blk.3.ffn_up_exps.weight", "layers.3.ffn.experts.{E}.w3.weight"}};
  for (const auto& r : rows) {
    const auto m = canonical_from_gguf(r[0]);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->canonical, r[1]);
    EXPECT_TRUE(m->stacked_experts);
    const std::string one = expert_name(m->canonical, 12);
    EXPECT_EQ(gguf_from_canonical(one), std::optional<std::string>(r[0])) << one;
  }
  EXPECT_EQ(expert_name("layers.3.ffn.experts.{E}.w1.weight", 7), "layers.3.ffn.experts.7.w1.weight");
}

TEST(Names, CanonicalNamesMapToThemselves) {
  const char* names[] = {
      "layers.0.attn.wq_a.weight",
      "layers.2.ffn.experts.5.w1.weight",
      "layers.2.ffn.experts.5.w1.scale",
      "layers.1.hc_attn_fn",
      "layers.1.hc_ffn_base",
      "layers.3.attn.compressor.wkv.weight",
      "layers.3.attn.wkv.weight",
      "layers.3.attn.wo_a.weight",
      "layers.3.attn.attn_sink",
      "layers.0.ffn.gate.tid2eid",
      "layers.1.engram.key_proj.weight",
      "hc_head_fn",
      "layers.3.attn.indexer.compressor.wkv.weight",
      "mtp.0.eh_proj.weight",
  };
  for (const char* n : names) {
    EXPECT_TRUE(is_canonical(n)) << n;
    EXPECT_EQ(canonical_from_hf(n), std::optional<std::string>(n)) << n;
    ASSERT_TRUE(canonical_from_gguf(n)) << n;
    EXPECT_EQ(canonical_from_gguf(n)->canonical, n);
  }
  // V4-only names have no other spelling.
  EXPECT_EQ(hf_from_canonical("layers.1.hc_attn_fn"), std::optional<std::string>("layers.1.hc_attn_fn"));
  EXPECT_EQ(gguf_from_canonical("layers.3.attn.wkv.weight"),
            std::optional<std::string>("layers.3.attn.wkv.weight"));
}

TEST(Names, UnknownNames) {
  for (const char* n : {"foo.bar", "model.layers.x.input_layernorm.weight",
                        "model.layers.01.input_layernorm.weight", "model.layers.1.input_layernorm.gamma",
                        "blk.1.ffn_gate_exps.scale", "", "layers", "layers.1", "embed.weight.extra"}) {
    EXPECT_FALSE(canonical_from_hf(n)) << n;
    EXPECT_FALSE(canonical_from_gguf(n)) << n;
    EXPECT_FALSE(is_canonical(n)) << n;
    EXPECT_EQ(classify(n), TensorClass::Other) << n;
  }
  EXPECT_FALSE(hf_from_canonical("model.norm.weight"));
  EXPECT_FALSE(gguf_from_canonical("token_embd.weight"));
}

TEST(Names, Classify) {
  const std::pair<const char*, TensorClass> rows[] = {
      {"embed.weight", TensorClass::Embedding},
      {"head.weight", TensorClass::Head},
      {"norm.weight", TensorClass::Norm},
      {"layers.0.attn_norm.weight", TensorClass::Norm},
      {"layers.0.ffn_norm.weight", TensorClass::Norm},
      {"layers.0.attn.wkv_b.weight", TensorClass::Attention},
      {"layers.0.attn.wq_a.scale", TensorClass::Attention},
      {"layers.0.attn.indexer.wk.weight", TensorClass::Indexer},
      {"layers.0.ffn.w2.weight", TensorClass::Dense},
      {"layers.4.ffn.gate.weight", TensorClass::Router},
      {"layers.4.ffn.gate.bias", TensorClass::Router},
      {"layers.4.ffn.shared_experts.w3.weight", TensorClass::SharedExpert},
      {"layers.4.ffn.experts.200.w3.weight", TensorClass::RoutedExpert},
      {"layers.4.hc_ffn_scale", TensorClass::HyperConnection},
      {"hc_head_base", TensorClass::HyperConnection},
      {"layers.1.engram.value_proj.weight", TensorClass::Engram},
      {"layers.61.eh_proj.weight", TensorClass::Mtp},
      {"mtp.0.ffn.experts.3.w1.weight", TensorClass::Mtp},
  };
  for (const auto& [n, c] : rows) EXPECT_EQ(classify(n), c) << n;
  EXPECT_EQ(class_name(TensorClass::RoutedExpert), "routed_expert");
  EXPECT_EQ(class_name(TensorClass::Other), "other");
  EXPECT_EQ(class_name(TensorClass::Embedding), "embedding");
}

TEST(Names, MtpByLayerCount) {
  EXPECT_EQ(classify("layers.61.attn.wq_a.weight", 61), TensorClass::Mtp);
  EXPECT_EQ(classify("layers.61.ffn.experts.3.w1.weight", 61), TensorClass::Mtp);
  EXPECT_EQ(classify("layers.60.attn.wq_a.weight", 61), TensorClass::Attention);
  EXPECT_EQ(classify("layers.61.attn.wq_a.weight"), TensorClass::Attention);
  EXPECT_EQ(classify("embed.weight", 0), TensorClass::Embedding);
}

TEST(Names, LayerAndExpert) {
  EXPECT_EQ(layer_of("layers.12.ffn.experts.255.w1.weight"), 12);
  EXPECT_EQ(expert_of("layers.12.ffn.experts.255.w1.weight"), 255);
  EXPECT_EQ(layer_of("layers.0.attn_norm.weight"), 0);
  EXPECT_EQ(expert_of("layers.0.attn_norm.weight"), -1);
  EXPECT_EQ(expert_of("layers.3.ffn.shared_experts.w1.weight"), -1);
  EXPECT_EQ(layer_of("embed.weight"), -1);
  EXPECT_EQ(layer_of("hc_head_fn"), -1);
  EXPECT_EQ(scale_name_of("layers.1.attn.wo.weight"), "layers.1.attn.wo.scale");
  EXPECT_EQ(scale_name_of("layers.1.hc_attn_fn"), "layers.1.hc_attn_fn");
}

}  // namespace
}  // namespace strata
