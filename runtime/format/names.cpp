#include "runtime/format/names.h"

#include <array>
#include <charconv>
#include <span>
#include <vector>

namespace strata {
namespace {

// Patterns are dot-separated tokens. Placeholders (whole tokens): {N} layer, {E} expert (decimal
// integers), {W} leaf (weight | bias | scale, spelled per format), * one or more remaining
// tokens (class table only). A literal token ending in '*' matches tokens with that prefix.
struct Row {
  std::string_view canonical;
  std::string_view stored;
  bool stacked = false;  // GGUF: the stored tensor holds every expert ({E} absent from it)
};

struct Leaf {
  std::string_view canonical;
  std::string_view stored;
};

constexpr std::array<Leaf, 3> kCanonicalLeaves = {
    {{"weight", "weight"}, {"bias", "bias"}, {"scale", "scale"}}};
constexpr std::array<Leaf, 3> kHfLeaves = {
    {{"weight", "weight"}, {"bias", "bias"}, {"scale", "weight_scale_inv"}}};
constexpr std::array<Leaf, 2> kGgufLeaves = {{{"weight", "weight"}, {"bias", "bias"}}};

// HF (deepseek_v3 / deepseek_v32) names. Rows with a fixed leaf precede {W} rows of the same module.
constexpr Row kHfRows[] = {
    {"embed.{W}", "model.embed_tokens.{W}"},
    {"norm.{W}", "model.norm.{W}"},
    {"head.{W}", "lm_head.{W}"},
    {"layers.{N}.attn_norm.{W}", "model.layers.{N}.input_layernorm.{W}"},
    {"layers.{N}.ffn_norm.{W}", "model.layers.{N}.post_attention_layernorm.{W}"},
    {"layers.{N}.attn.wq.{W}", "model.layers.{N}.self_attn.q_proj.{W}"},
    {"layers.{N}.attn.wq_a.{W}", "model.layers.{N}.self_attn.q_a_proj.{W}"},
    {"layers.{N}.attn.q_norm.{W}", "model.layers.{N}.self_attn.q_a_layernorm.{W}"},
    {"layers.{N}.attn.wq_b.{W}", "model.layers.{N}.self_attn.q_b_proj.{W}"},
    {"layers.{N}.attn.wkv_a.{W}", "model.layers.{N}.self_attn.kv_a_proj_with_mqa.{W}"},
    {"layers.{N}.attn.kv_norm.{W}", "model.layers.{N}.self_attn.kv_a_layernorm.{W}"},
    {"layers.{N}.attn.wkv_b.{W}", "model.layers.{N}.self_attn.kv_b_proj.{W}"},
    {"layers.{N}.attn.wo.{W}", "model.layers.{N}.self_attn.o_proj.{W}"},
    {"layers.{N}.attn.indexer.wq_b.{W}", "model.layers.{N}.self_attn.indexer.wq_b.{W}"},
    {"layers.{N}.attn.indexer.wk.{W}", "model.layers.{N}.self_attn.indexer.wk.{W}"},
    {"layers.{N}.attn.indexer.weights_proj.{W}", "model.layers.{N}.self_attn.indexer.weights_proj.{W}"},
    {"layers.{N}.attn.indexer.k_norm.{W}", "model.layers.{N}.self_attn.indexer.k_norm.{W}"},
    {"layers.{N}.ffn.gate.bias", "model.layers.{N}.mlp.gate.e_score_correction_bias"},
    {"layers.{N}.ffn.gate.weight", "model.layers.{N}.mlp.gate.weight"},
    {"layers.{N}.ffn.w1.{W}", "model.layers.{N}.mlp.gate_proj.{W}"},
    {"layers.{N}.ffn.w2.{W}", "model.layers.{N}.mlp.down_proj.{W}"},
    {"layers.{N}.ffn.w3.{W}", "model.layers.{N}.mlp.up_proj.{W}"},
    {"layers.{N}.ffn.experts.{E}.w1.{W}", "model.layers.{N}.mlp.experts.{E}.gate_proj.{W}"},
    {"layers.{N}.ffn.experts.{E}.w2.{W}", "model.layers.{N}.mlp.experts.{E}.down_proj.{W}"},
    {"layers.{N}.ffn.experts.{E}.w3.{W}", "model.layers.{N}.mlp.experts.{E}.up_proj.{W}"},
    {"layers.{N}.ffn.shared_experts.w1.{W}", "model.layers.{N}.mlp.shared_experts.gate_proj.{W}"},
    {"layers.{N}.ffn.shared_experts.w2.{W}", "model.layers.{N}.mlp.shared_experts.down_proj.{W}"},
    {"layers.{N}.ffn.shared_experts.w3.{W}", "model.layers.{N}.mlp.shared_experts.up_proj.{W}"},
    // Multi-token-prediction layer (index num_hidden_layers) extras.
    {"layers.{N}.enorm.{W}", "model.layers.{N}.enorm.{W}"},
    {"layers.{N}.hnorm.{W}", "model.layers.{N}.hnorm.{W}"},
    {"layers.{N}.eh_proj.{W}", "model.layers.{N}.eh_proj.{W}"},
    {"layers.{N}.embed.{W}", "model.layers.{N}.embed_tokens.{W}"},
    {"layers.{N}.shared_head.norm.{W}", "model.layers.{N}.shared_head.norm.{W}"},
    {"layers.{N}.shared_head.head.{W}", "model.layers.{N}.shared_head.head.{W}"},
};

// GGUF (llama.cpp deepseek2) names.
constexpr Row kGgufRows[] = {
    {"embed.{W}", "token_embd.{W}"},
    {"norm.{W}", "output_norm.{W}"},
    {"head.{W}", "output.{W}"},
    {"layers.{N}.attn_norm.{W}", "blk.{N}.attn_norm.{W}"},
    {"layers.{N}.ffn_norm.{W}", "blk.{N}.ffn_norm.{W}"},
    {"layers.{N}.attn.wq.{W}", "blk.{N}.attn_q.{W}"},
    {"layers.{N}.attn.wq_a.{W}", "blk.{N}.attn_q_a.{W}"},
    {"layers.{N}.attn.q_norm.{W}", "blk.{N}.attn_q_a_norm.{W}"},
    {"layers.{N}.attn.wq_b.{W}", "blk.{N}.attn_q_b.{W}"},
    {"layers.{N}.attn.wkv_a.{W}", "blk.{N}.attn_kv_a_mqa.{W}"},
    {"layers.{N}.attn.kv_norm.{W}", "blk.{N}.attn_kv_a_norm.{W}"},
    {"layers.{N}.attn.wkv_b.{W}", "blk.{N}.attn_kv_b.{W}"},
    {"layers.{N}.attn.wk_b.{W}", "blk.{N}.attn_k_b.{W}"},
    {"layers.{N}.attn.wv_b.{W}", "blk.{N}.attn_v_b.{W}"},
    {"layers.{N}.attn.wo.{W}", "blk.{N}.attn_output.{W}"},
    // DeepSeek-V3.2 lightning indexer (llama.cpp's names).
    {"layers.{N}.attn.indexer.wq_b.{W}", "blk.{N}.indexer.attn_q_b.{W}"},
    {"layers.{N}.attn.indexer.wk.{W}", "blk.{N}.indexer.attn_k.{W}"},
    {"layers.{N}.attn.indexer.k_norm.{W}", "blk.{N}.indexer.k_norm.{W}"},
    {"layers.{N}.attn.indexer.weights_proj.{W}", "blk.{N}.indexer.proj.{W}"},
    {"layers.{N}.ffn.gate.bias", "blk.{N}.exp_probs_b.bias"},
    {"layers.{N}.ffn.gate.weight", "blk.{N}.ffn_gate_inp.weight"},
    {"layers.{N}.ffn.w1.{W}", "blk.{N}.ffn_gate.{W}"},
    {"layers.{N}.ffn.w2.{W}", "blk.{N}.ffn_down.{W}"},
    {"layers.{N}.ffn.w3.{W}", "blk.{N}.ffn_up.{W}"},
    {"layers.{N}.ffn.experts.{E}.w1.{W}", "blk.{N}.ffn_gate_exps.{W}", true},
    {"layers.{N}.ffn.experts.{E}.w2.{W}", "blk.{N}.ffn_down_exps.{W}", true},
    {"layers.{N}.ffn.experts.{E}.w3.{W}", "blk.{N}.ffn_up_exps.{W}", true},
    {"layers.{N}.ffn.shared_experts.w1.{W}", "blk.{N}.ffn_gate_shexp.{W}"},
    {"layers.{N}.ffn.shared_experts.w2.{W}", "blk.{N}.ffn_down_shexp.{W}"},
    {"layers.{N}.ffn.shared_experts.w3.{W}", "blk.{N}.ffn_up_shexp.{W}"},
    {"layers.{N}.enorm.{W}", "blk.{N}.nextn.enorm.{W}"},
    {"layers.{N}.hnorm.{W}", "blk.{N}.nextn.hnorm.{W}"},
    {"layers.{N}.eh_proj.{W}", "blk.{N}.nextn.eh_proj.{W}"},
    {"layers.{N}.embed.{W}", "blk.{N}.nextn.embed_tokens.{W}"},
    {"layers.{N}.shared_head.norm.{W}", "blk.{N}.nextn.shared_head_norm.{W}"},
    {"layers.{N}.shared_head.head.{W}", "blk.{N}.nextn.shared_head_head.{W}"},
};

struct ClassRow {
  std::string_view pattern;
  TensorClass cls;
};

// Canonical names of every architecture, first match wins.
constexpr ClassRow kClassRows[] = {
    {"embed.{W}", TensorClass::Embedding},
    {"head.{W}", TensorClass::Head},
    {"norm.{W}", TensorClass::Norm},
    {"hc_head_*", TensorClass::HyperConnection},
    {"layers.{N}.attn_norm.{W}", TensorClass::Norm},
    {"layers.{N}.ffn_norm.{W}", TensorClass::Norm},
    {"layers.{N}.attn.indexer.*", TensorClass::Indexer},
    {"layers.{N}.attn.*", TensorClass::Attention},
    {"layers.{N}.ffn.gate.*", TensorClass::Router},
    {"layers.{N}.ffn.shared_experts.*", TensorClass::SharedExpert},
    {"layers.{N}.ffn.experts.{E}.*", TensorClass::RoutedExpert},
    {"layers.{N}.ffn.w1.{W}", TensorClass::Dense},
    {"layers.{N}.ffn.w2.{W}", TensorClass::Dense},
    {"layers.{N}.ffn.w3.{W}", TensorClass::Dense},
    {"layers.{N}.hc_*", TensorClass::HyperConnection},
    {"layers.{N}.engram.*", TensorClass::Engram},
    {"layers.{N}.enorm.{W}", TensorClass::Mtp},
    {"layers.{N}.hnorm.{W}", TensorClass::Mtp},
    {"layers.{N}.eh_proj.{W}", TensorClass::Mtp},
    {"layers.{N}.embed.{W}", TensorClass::Mtp},
    {"layers.{N}.shared_head.*", TensorClass::Mtp},
    {"mtp.{N}.*", TensorClass::Mtp},
};

constexpr std::array<std::string_view, 13> kClassNames = {
    "embedding", "head",   "norm",          "attention",     "indexer",
    "dense",     "router", "shared_expert", "routed_expert", "hyper_connection",
    "engram",    "mtp",    "other",
};

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

bool is_index(std::string_view t) {
  if (t.empty() || t.size() > 6) return false;
  if (t.size() > 1 && t[0] == '0') return false;
  for (char c : t)
    if (c < '0' || c > '9') return false;
  return true;
}

struct Captures {
  std::string_view n, e;
  std::string_view leaf;  // canonical spelling
};

// Matches name against pattern; `leaves` translates the stored leaf spelling to the canonical one.
bool match(std::string_view pattern, std::string_view name, std::span<const Leaf> leaves, bool leaf_is_stored,
           Captures& cap) {
  const auto pt = split(pattern);
  const auto nt = split(name);
  for (size_t i = 0; i < pt.size(); ++i) {
    const std::string_view p = pt[i];
    if (p == "*") return i < nt.size();
    if (i >= nt.size()) return false;
    const std::string_view t = nt[i];
    if (p == "{N}" || p == "{E}") {
      if (!is_index(t)) return false;
      (p == "{N}" ? cap.n : cap.e) = t;
    } else if (p == "{W}") {
      bool found = false;
      for (const Leaf& l : leaves) {
        if ((leaf_is_stored ? l.stored : l.canonical) == t) {
          cap.leaf = l.canonical;
          found = true;
          break;
        }
      }
      if (!found) return false;
    } else if (!p.empty() && p.back() == '*') {
      if (t.substr(0, p.size() - 1) != p.substr(0, p.size() - 1) || t.size() < p.size()) return false;
    } else if (p != t) {
      return false;
    }
  }
  return pt.size() == nt.size();
}

// Writes pattern with the captures; {W} is written in the spelling of `leaves` (canonical ->
// stored when to_stored). An {E} without a capture stays "{E}".
std::string fill(std::string_view pattern, const Captures& cap, std::span<const Leaf> leaves,
                 bool to_stored) {
  std::string out;
  const auto pt = split(pattern);
  for (size_t i = 0; i < pt.size(); ++i) {
    if (i > 0) out += '.';
    const std::string_view p = pt[i];
    if (p == "{N}") {
      out += cap.n;
    } else if (p == "{E}") {
      out += cap.e.empty() ? std::string_view("{E}") : cap.e;
    } else if (p == "{W}") {
      std::string_view spelled = cap.leaf;
      if (to_stored)
        for (const Leaf& l : leaves)
          if (l.canonical == cap.leaf) spelled = l.stored;
      out += spelled;
    } else {
      out += p;
    }
  }
  return out;
}

bool leaf_supported(const Captures& cap, std::span<const Leaf> leaves) {
  if (cap.leaf.empty()) return true;
  for (const Leaf& l : leaves)
    if (l.canonical == cap.leaf) return true;
  return false;
}

int to_int(std::string_view s) {
  int v = -1;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

std::string_view class_name(TensorClass c) { return kClassNames.at(static_cast<size_t>(c)); }

bool is_canonical(std::string_view name) {
  Captures cap;
  for (const ClassRow& r : kClassRows)
    if (match(r.pattern, name, kCanonicalLeaves, false, cap)) return true;
  return false;
}

std::optional<std::string> canonical_from_hf(std::string_view hf) {
  for (const Row& r : kHfRows) {
    Captures cap;
    if (match(r.stored, hf, kHfLeaves, true, cap)) return fill(r.canonical, cap, kHfLeaves, false);
  }
  if (is_canonical(hf)) return std::string(hf);
  return std::nullopt;
}

std::optional<std::string> hf_from_canonical(std::string_view canonical) {
  for (const Row& r : kHfRows) {
    Captures cap;
    if (match(r.canonical, canonical, kCanonicalLeaves, false, cap) && leaf_supported(cap, kHfLeaves))
      return fill(r.stored, cap, kHfLeaves, true);
  }
  if (is_canonical(canonical)) return std::string(canonical);
  return std::nullopt;
}

std::optional<GgufNameMap> canonical_from_gguf(std::string_view gguf) {
  for (const Row& r : kGgufRows) {
    Captures cap;
    if (match(r.stored, gguf, kGgufLeaves, true, cap))
      return GgufNameMap{fill(r.canonical, cap, kGgufLeaves, false), r.stacked};
  }
  if (is_canonical(gguf)) return GgufNameMap{std::string(gguf), false};
  return std::nullopt;
}

std::optional<std::string> gguf_from_canonical(std::string_view canonical) {
  for (const Row& r : kGgufRows) {
    Captures cap;
    if (match(r.canonical, canonical, kCanonicalLeaves, false, cap) && leaf_supported(cap, kGgufLeaves))
      return fill(r.stored, cap, kGgufLeaves, true);
  }
  if (is_canonical(canonical)) return std::string(canonical);
  return std::nullopt;
}

std::string expert_name(std::string_view pattern, int e) {
  std::string out(pattern);
  const size_t at = out.find("{E}");
  if (at != std::string::npos) out.replace(at, 3, std::to_string(e));
  return out;
}

TensorClass classify(std::string_view canonical, int num_hidden_layers) {
  for (const ClassRow& r : kClassRows) {
    Captures cap;
    if (!match(r.pattern, canonical, kCanonicalLeaves, false, cap)) continue;
    if (num_hidden_layers >= 0 && !cap.n.empty() && to_int(cap.n) >= num_hidden_layers)
      return TensorClass::Mtp;
    return r.cls;
  }
  return TensorClass::Other;
}

int layer_of(std::string_view canonical) {
  Captures cap;
  if (match("layers.{N}.*", canonical, kCanonicalLeaves, false, cap)) return to_int(cap.n);
  return -1;
}

int expert_of(std::string_view canonical) {
  Captures cap;
  if (match("layers.{N}.ffn.experts.{E}.*", canonical, kCanonicalLeaves, false, cap)) return to_int(cap.e);
  return -1;
}

std::string scale_name_of(std::string_view weight) {
  constexpr std::string_view kSuffix = ".weight";
  if (weight.size() >= kSuffix.size() && weight.substr(weight.size() - kSuffix.size()) == kSuffix)
    return std::string(weight.substr(0, weight.size() - kSuffix.size())) + ".scale";
  return std::string(weight);
}

}  // namespace strata
