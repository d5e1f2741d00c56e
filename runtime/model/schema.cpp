// Canonical tensors and shapes per architecture (see schema.h for the list).
#include "runtime/model/schema.h"

#include "runtime/common/error.h"

namespace strata {

namespace {

using Kind = TensorSpec::Kind;

class Builder {
 public:
  explicit Builder(std::vector<TensorSpec>& out) : out_(out) {}
  void add(std::string name, std::vector<int64_t> shape, Kind kind, bool optional = false) {
    out_.push_back(TensorSpec{std::move(name), std::move(shape), kind, optional});
  }

 private:
  std::vector<TensorSpec>& out_;
};

// ffn.* of a MoE layer (V3 and V4), prefix ends in '.'.
void add_moe(Builder& b, const ModelConfig& c, const std::string& p, bool hash_layer) {
  const int64_t h = c.hidden_size, m = c.moe_intermediate_size;
  b.add(p + "ffn.gate.weight", {c.n_routed_experts, h}, Kind::Matrix);
  if (hash_layer)
    b.add(p + "ffn.gate.tid2eid", {c.vocab_size, c.num_experts_per_tok}, Kind::IntTable);
  else if (c.is_v4() || c.topk_method == "noaux_tc")
    b.add(p + "ffn.gate.bias", {c.n_routed_experts}, Kind::Bias);
  for (int64_t e = 0; e < c.n_routed_experts; ++e) {
    const std::string q = p + "ffn.experts." + std::to_string(e) + ".";
    b.add(q + "w1.weight", {m, h}, Kind::Weight);
    b.add(q + "w2.weight", {h, m}, Kind::Weight);
    b.add(q + "w3.weight", {m, h}, Kind::Weight);
  }
  if (c.n_shared_experts > 0) {
    const int64_t s = m * c.n_shared_experts;
    b.add(p + "ffn.shared_experts.w1.weight", {s, h}, Kind::Weight);
    b.add(p + "ffn.shared_experts.w2.weight", {h, s}, Kind::Weight);
    b.add(p + "ffn.shared_experts.w3.weight", {s, h}, Kind::Weight);
  }
}

// A V3/V3.2 decoder layer under prefix p ("layers.N.").
void add_mla_layer(Builder& b, const ModelConfig& c, const std::string& p, int64_t layer) {
  const int64_t h = c.hidden_size, nh = c.num_attention_heads;
  const int64_t qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
  b.add(p + "attn_norm.weight", {h}, Kind::Norm);
  b.add(p + "ffn_norm.weight", {h}, Kind::Norm);
  if (c.q_lora_rank > 0) {
    b.add(p + "attn.wq_a.weight", {c.q_lora_rank, h}, Kind::Weight);
    b.add(p + "attn.q_norm.weight", {c.q_lora_rank}, Kind::Norm);
    b.add(p + "attn.wq_b.weight", {nh * qk, c.q_lora_rank}, Kind::Weight);
  } else {
    b.add(p + "attn.wq.weight", {nh * qk, h}, Kind::Weight);
  }
  b.add(p + "attn.wkv_a.weight", {c.kv_lora_rank + c.qk_rope_head_dim, h}, Kind::Weight);
  b.add(p + "attn.kv_norm.weight", {c.kv_lora_rank}, Kind::Norm);
  b.add(p + "attn.wkv_b.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}, Kind::Weight);
  b.add(p + "attn.wo.weight", {h, nh * c.v_head_dim}, Kind::Weight);
  if (c.arch == Arch::DeepseekV32) {
    const int64_t ih = c.index_n_heads, id = c.index_head_dim;
    b.add(p + "attn.indexer.wq_b.weight", {ih * id, c.q_lora_rank}, Kind::Weight);
    b.add(p + "attn.indexer.wk.weight", {id, h}, Kind::Weight);
    b.add(p + "attn.indexer.k_norm.weight", {id}, Kind::Norm);
    b.add(p + "attn.indexer.k_norm.bias", {id}, Kind::Bias);
    b.add(p + "attn.indexer.weights_proj.weight", {ih, h}, Kind::Matrix);
  }
  if (c.is_moe_layer(layer)) {
    add_moe(b, c, p, false);
  } else {
    const int64_t f = c.intermediate_size;
    b.add(p + "ffn.w1.weight", {f, h}, Kind::Weight);
    b.add(p + "ffn.w2.weight", {h, f}, Kind::Weight);
    b.add(p + "ffn.w3.weight", {f, h}, Kind::Weight);
  }
}

// Compressor under prefix p ("....compressor.") for head width d and ratio r.
void add_compressor(Builder& b, const ModelConfig& c, const std::string& p, int64_t d, int64_t r) {
  const int64_t w = (r == 4 ? 2 : 1) * d;
  b.add(p + "wkv.weight", {w, c.hidden_size}, Kind::Matrix);
  b.add(p + "wgate.weight", {w, c.hidden_size}, Kind::Matrix);
  b.add(p + "ape", {r, w}, Kind::Scalar);
  b.add(p + "norm.weight", {d}, Kind::Norm);
}

void add_hc_head(Builder& b, const ModelConfig& c, const std::string& p) {
  b.add(p + "hc_head_fn", {c.hc_mult, c.hc_mult * c.hidden_size}, Kind::Scalar);
  b.add(p + "hc_head_base", {c.hc_mult}, Kind::Scalar);
  b.add(p + "hc_head_scale", {1}, Kind::Scalar);
}

// A V4 block under prefix p; `layer` is its index in compress_ratios / hash-layer numbering.
void add_v4_layer(Builder& b, const ModelConfig& c, const std::string& p, int64_t layer) {
  const int64_t h = c.hidden_size, nh = c.num_attention_heads, d = c.head_dim;
  const int64_t hc = c.hc_mult, mix = (2 + hc) * hc;
  b.add(p + "attn_norm.weight", {h}, Kind::Norm);
  b.add(p + "ffn_norm.weight", {h}, Kind::Norm);
  for (const char* s : {"attn", "ffn"}) {
    b.add(p + "hc_" + s + "_fn", {mix, hc * h}, Kind::Scalar);
    b.add(p + "hc_" + s + "_base", {mix}, Kind::Scalar);
    b.add(p + "hc_" + s + "_scale", {3}, Kind::Scalar);
  }
  b.add(p + "attn.attn_sink", {nh}, Kind::Scalar);
  b.add(p + "attn.wq_a.weight", {c.q_lora_rank, h}, Kind::Weight);
  b.add(p + "attn.q_norm.weight", {c.q_lora_rank}, Kind::Norm);
  b.add(p + "attn.wq_b.weight", {nh * d, c.q_lora_rank}, Kind::Weight);
  b.add(p + "attn.wkv.weight", {d, h}, Kind::Weight);
  b.add(p + "attn.kv_norm.weight", {d}, Kind::Norm);
  b.add(p + "attn.wo_a.weight", {c.o_groups * c.o_lora_rank, nh * d / c.o_groups}, Kind::Weight);
  b.add(p + "attn.wo_b.weight", {h, c.o_groups * c.o_lora_rank}, Kind::Weight);
  const int64_t r = c.compress_ratio(layer);
  if (r > 0) {
    add_compressor(b, c, p + "attn.compressor.", d, r);
    if (r == 4) {
      const int64_t ih = c.index_n_heads, id = c.index_head_dim;
      b.add(p + "attn.indexer.wq_b.weight", {ih * id, c.q_lora_rank}, Kind::Weight);
      b.add(p + "attn.indexer.weights_proj.weight", {ih, h}, Kind::Matrix);
      add_compressor(b, c, p + "attn.indexer.compressor.", id, r);
    }
  }
  add_moe(b, c, p, c.is_hash_layer(layer));
}

void add_engram(Builder& b, const ModelConfig& c, int64_t layer) {
  const EngramConfig& e = c.engram;
  const std::string p = "layers." + std::to_string(layer) + ".engram.";
  const int64_t h = c.hidden_size, hc = c.is_v4() ? c.hc_mult : 1;
  const int64_t ew = int64_t{e.max_ngram_size - 1} * e.n_embed_per_ngram;
  int64_t rows = 0;
  const auto sizes = engram_head_sizes(e);
  for (int64_t s : sizes.at(static_cast<int>(layer))) rows += s;
  b.add(p + "multi_head_embedding.embedding.weight", {rows, e.n_embed_per_ngram / e.n_head_per_ngram}, Kind::Table);
  b.add(p + "value_proj.weight", {h, ew}, Kind::Weight);
  b.add(p + "value_proj.bias", {h}, Kind::Bias);
  for (int64_t i = 0; i < hc; ++i) {
    const std::string s = std::to_string(i);
    b.add(p + "key_projs." + s + ".weight", {h, ew}, Kind::Weight);
    b.add(p + "key_projs." + s + ".bias", {h}, Kind::Bias);
    b.add(p + "norm1." + s + ".weight", {h}, Kind::Norm);
    b.add(p + "norm2." + s + ".weight", {h}, Kind::Norm);
    b.add(p + "short_conv.norms." + s + ".weight", {h}, Kind::Norm);
  }
  b.add(p + "short_conv.conv.weight", {hc * h, 1, e.kernel_size}, Kind::Scalar);
  b.add(p + "multipliers", {e.max_ngram_size}, Kind::IntTable);
  b.add(p + "head_sizes", {int64_t{e.max_ngram_size - 1} * e.n_head_per_ngram}, Kind::IntTable);
}

int64_t checked_mul(int64_t a, int64_t b, const ModelConfig& c) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw Error(c.source + ": parameter count overflows int64");
  return r;
}
int64_t checked_add(int64_t a, int64_t b, const ModelConfig& c) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw Error(c.source + ": parameter count overflows int64");
  return r;
}

}  // namespace

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string_view kind_name(TensorSpec::Kind k) {
  switch (k) {
    case Kind::Weight: return "weight";
    case Kind::Norm: return "norm";
    case Kind::Bias: return "bias";
    case Kind::Table: return "table";
    case Kind::Scalar: return "scalar";
    case Kind::IntTable: return "int_table";
    case Kind::Matrix: return "matrix";
  }
  return "?";
}

std::vector<TensorSpec> global_schema(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  Builder b(out);
  b.add("embed.weight", {c.vocab_size, c.hidden_size}, Kind::Table);
  b.add("norm.weight", {c.hidden_size}, Kind::Norm);
  if (!c.tie_word_embeddings) b.add("head.weight", {c.vocab_size, c.hidden_size}, Kind::Weight);
  if (c.is_v4()) add_hc_head(b, c, "");
  return out;
}

std::vector<TensorSpec> layer_schema(const ModelConfig& c, int64_t layer) {
  if (layer < 0 || layer >= c.num_hidden_layers)
    throw Error(c.source + ": layer " + std::to_string(layer) + " out of range (num_hidden_layers " +
                std::to_string(c.num_hidden_layers) + ")");
  std::vector<TensorSpec> out;
  Builder b(out);
  const std::string p = "layers." + std::to_string(layer) + ".";
  if (c.is_v4())
    add_v4_layer(b, c, p, layer);
  else
    add_mla_layer(b, c, p, layer);
  if (c.is_engram_layer(layer)) add_engram(b, c, layer);
  return out;
}

std::vector<TensorSpec> mtp_schema(const ModelConfig& c, int64_t i) {
  if (i < 0 || i >= c.num_nextn_predict_layers)
    throw Error(c.source + ": MTP module " + std::to_string(i) + " out of range (num_nextn_predict_layers " +
                std::to_string(c.num_nextn_predict_layers) + ")");
  std::vector<TensorSpec> out;
  Builder b(out);
  const int64_t h = c.hidden_size, layer = c.num_hidden_layers + i;
  if (c.is_v4()) {
    const std::string p = "mtp." + std::to_string(i) + ".";
    add_v4_layer(b, c, p, layer);
    b.add(p + "e_proj.weight", {h, h}, Kind::Weight);
    b.add(p + "h_proj.weight", {h, h}, Kind::Weight);
    b.add(p + "enorm.weight", {h}, Kind::Norm);
    b.add(p + "hnorm.weight", {h}, Kind::Norm);
    b.add(p + "norm.weight", {h}, Kind::Norm);
    add_hc_head(b, c, p);
  } else {
    const std::string p = "layers." + std::to_string(layer) + ".";
    add_mla_layer(b, c, p, layer);
    b.add(p + "enorm.weight", {h}, Kind::Norm);
    b.add(p + "hnorm.weight", {h}, Kind::Norm);
    b.add(p + "eh_proj.weight", {h, 2 * h}, Kind::Weight);
    b.add(p + "shared_head.norm.weight", {h}, Kind::Norm);
    b.add(p + "embed.weight", {c.vocab_size, h}, Kind::Table, true);
    b.add(p + "shared_head.head.weight", {c.vocab_size, h}, Kind::Weight, true);
  }
  return out;
}

std::vector<TensorSpec> model_schema(const ModelConfig& c, bool include_mtp) {
  std::vector<TensorSpec> out = global_schema(c);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::vector<TensorSpec> t = layer_schema(c, l);
    out.insert(out.end(), std::make_move_iterator(t.begin()), std::make_move_iterator(t.end()));
  }
  if (include_mtp)
    for (int64_t i = 0; i < c.num_nextn_predict_layers; ++i) {
      std::vector<TensorSpec> t = mtp_schema(c, i);
      out.insert(out.end(), std::make_move_iterator(t.begin()), std::make_move_iterator(t.end()));
    }
  return out;
}

ParamCounts count_params(const ModelConfig& c) {
  ParamCounts pc;
  auto add_all = [&](const std::vector<TensorSpec>& specs, bool moe) {
    int64_t routed = 0;
    for (const TensorSpec& t : specs) {
      if (t.optional) continue;
      int64_t n = 1;
      for (int64_t d : t.shape) n = checked_mul(n, d, c);
      pc.total = checked_add(pc.total, n, c);
      if (moe && t.name.find(".ffn.experts.") != std::string::npos)
        routed = checked_add(routed, n, c);
      else
        pc.active = checked_add(pc.active, n, c);
    }
    // Every routed expert has the same size: top_k of them are active per token.
    if (moe && c.n_routed_experts > 0)
      pc.active = checked_add(pc.active, checked_mul(routed / c.n_routed_experts, c.num_experts_per_tok, c), c);
  };
  add_all(global_schema(c), false);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) add_all(layer_schema(c, l), c.is_moe_layer(l));
  return pc;
}

}  // namespace strata
