// HF config.json <-> ModelConfig.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/common/files.h"
#include "runtime/config/json_fields.h"
#include "runtime/config/model_config.h"
#include "runtime/format/strict_json.h"

namespace strata {

using config_detail::Fields;
using nlohmann::json;

std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::DeepseekV3: return "deepseek_v3";
    case Arch::DeepseekV32: return "deepseek_v32";
    case Arch::DeepseekV4: return "deepseek_v4";
  }
  return "?";
}

std::string_view scoring_func_name(ScoringFunc f) {
  switch (f) {
    case ScoringFunc::Softmax: return "softmax";
    case ScoringFunc::Sigmoid: return "sigmoid";
    case ScoringFunc::SqrtSoftplus: return "sqrtsoftplus";
  }
  return "?";
}

namespace {

const char* kQuantKeys[] = {"quant_method", "fmt", "scale_fmt", "activation_scheme", "weight_block_size"};

Arch parse_arch(const Fields& f) {
  const std::string mt = f.req_str("model_type");
  if (mt == "deepseek_v3") return Arch::DeepseekV3;
  if (mt == "deepseek_v32") return Arch::DeepseekV32;
  if (mt == "deepseek_v4") return Arch::DeepseekV4;
  f.fail("model_type", "names an unknown model type '" + mt +
                           "' (strata knows deepseek_v3, deepseek_v32, deepseek_v4)");
}

ScoringFunc parse_scoring(const Fields& f, ScoringFunc def) {
  if (!f.has("scoring_func")) return def;
  const std::string s = f.req_str("scoring_func");
  if (s == "softmax") return ScoringFunc::Softmax;
  if (s == "sigmoid") return ScoringFunc::Sigmoid;
  if (s == "sqrtsoftplus") return ScoringFunc::SqrtSoftplus;
  f.fail("scoring_func", "has unknown value '" + s + "' (softmax, sigmoid or sqrtsoftplus)");
}

RopeScaling parse_rope_scaling(const Fields& top) {
  RopeScaling r;
  const json* v = top.get("rope_scaling");
  if (!v) return r;
  Fields f(*v, top.file(), "rope_scaling.");
  std::string type = f.has("type") ? f.req_str("type") : f.opt_str("rope_type", "");
  // A factor with no type would silently run unscaled: say which type is meant.
  if (type.empty() && v->is_object() && !v->empty())
    f.fail("type", "is missing: rope_scaling has fields but no \"type\" (or \"rope_type\"): \"yarn\" to scale, "
                   "\"default\" (or rope_scaling: null) for none");
  if (type.empty() || type == "default") return r;
  if (type != "yarn") f.fail(f.has("type") ? "type" : "rope_type", "'" + type + "' is not supported (only yarn)");
  r.type = type;
  r.factor = f.req_num("factor");
  r.original_max_position_embeddings = f.req_int("original_max_position_embeddings");
  r.beta_fast = f.opt_num("beta_fast", 32);
  r.beta_slow = f.opt_num("beta_slow", 1);
  r.mscale = f.opt_num("mscale", 1);
  r.mscale_all_dim = f.opt_num("mscale_all_dim", 0);
  return r;
}

QuantizationConfig parse_quant(const Fields& top) {
  QuantizationConfig q;
  const json* v = top.get("quantization_config");
  if (!v) return q;
  Fields f(*v, top.file(), "quantization_config.");
  q.present = true;
  q.quant_method = f.opt_str("quant_method", "");
  q.fmt = f.opt_str("fmt", "");
  q.scale_fmt = f.opt_str("scale_fmt", "");
  q.activation_scheme = f.opt_str("activation_scheme", "");
  q.weight_block_size = f.opt_int_array("weight_block_size").value_or(std::vector<int64_t>{});
  q.raw = *v;
  for (const char* k : kQuantKeys) q.raw.erase(k);
  return q;
}

EngramConfig parse_engram(const Fields& top) {
  EngramConfig e;
  const json* v = top.get("engram");
  if (!v) return e;
  Fields f(*v, top.file(), "engram.");
  e.enabled = true;
  for (int64_t id : f.req_int_array("layer_ids")) {
    if (id < 0 || id > (1 << 20)) f.fail("layer_ids", "holds an out-of-range layer id " + std::to_string(id));
    e.layer_ids.push_back(static_cast<int>(id));
  }
  auto small = [&](const std::string& k, int64_t val) {
    if (val < -(1 << 30) || val > (1 << 30)) f.fail(k, "is out of range (" + std::to_string(val) + ")");
    return static_cast<int>(val);
  };
  e.max_ngram_size = small("max_ngram_size", f.req_int("max_ngram_size"));
  e.n_head_per_ngram = small("n_head_per_ngram", f.req_int("n_head_per_ngram"));
  e.n_embed_per_ngram = small("n_embed_per_ngram", f.req_int("n_embed_per_ngram"));
  e.vocab_sizes = f.req_int_array("engram_vocab_size");
  e.kernel_size = small("kernel_size", f.opt_int("kernel_size", 4));
  e.pad_id = small("pad_id", f.opt_int("pad_id", 2));
  e.seed = f.opt_int("seed", 0);
  return e;
}

// eos_token_id as an id or a non-empty list of ids (generation stops on each).
std::vector<int64_t> eos_ids(const Fields& f) {
  constexpr size_t kMaxEosIds = 256;
  const json* eos = f.get("eos_token_id");
  if (!eos) return {};
  if (!eos->is_array()) return {f.as_int(*eos, "eos_token_id")};
  if (eos->empty()) f.fail("eos_token_id", "is an empty list");
  if (eos->size() > kMaxEosIds)
    f.fail("eos_token_id", "lists " + std::to_string(eos->size()) + " ids; at most " + std::to_string(kMaxEosIds) +
                               " are accepted");
  return f.req_int_array("eos_token_id");
}

}  // namespace

ModelConfig parse_hf_config(const json& j, const std::string& source) {
  Fields f(j, source);
  ModelConfig c;
  c.source = source;
  c.arch = parse_arch(f);
  const bool v4 = c.arch == Arch::DeepseekV4;

  c.vocab_size = f.req_int("vocab_size");
  c.hidden_size = f.req_int("hidden_size");
  c.num_hidden_layers = f.req_int("num_hidden_layers");
  c.num_nextn_predict_layers = f.opt_int("num_nextn_predict_layers", 0);
  c.num_attention_heads = f.req_int("num_attention_heads");
  c.num_key_value_heads = f.opt_int("num_key_value_heads", c.num_attention_heads);
  c.moe_intermediate_size = f.req_int("moe_intermediate_size");
  c.n_routed_experts = f.req_int("n_routed_experts");
  c.n_shared_experts = f.req_int("n_shared_experts");
  c.num_experts_per_tok = f.req_int("num_experts_per_tok");
  c.qk_rope_head_dim = f.req_int("qk_rope_head_dim");
  if (!j.contains("q_lora_rank")) f.missing("q_lora_rank");
  c.q_lora_rank = f.opt_int("q_lora_rank", 0);  // null: no q LoRA
  c.routed_scaling_factor = f.req_num("routed_scaling_factor");
  // Every DeepSeek model gates with SiLU (V4 clamps it: swiglu_limit); another activation named
  // here would be ignored, so it is refused.
  if (f.has("hidden_act") && f.opt_str("hidden_act", "silu") != "silu")
    f.fail("hidden_act", "is '" + f.opt_str("hidden_act", "") + "'; strata computes the SiLU-gated FFN of DeepSeek models "
                         "(hidden_act \"silu\") only");
  c.rms_norm_eps = f.opt_num("rms_norm_eps", 1e-6);
  c.rope_theta = f.opt_num("rope_theta", 10000);
  c.rope_scaling = parse_rope_scaling(f);
  c.max_position_embeddings = f.opt_int("max_position_embeddings", 4096);
  c.bos_token_id = f.opt_int("bos_token_id", 0);
  if (const std::vector<int64_t> eos = eos_ids(f); !eos.empty()) {
    c.eos_token_id = eos[0];
    c.extra_eos_token_ids.assign(eos.begin() + 1, eos.end());
  }
  c.tie_word_embeddings = f.opt_bool("tie_word_embeddings", false);
  c.norm_topk_prob = f.req_bool("norm_topk_prob");
  c.topk_method = f.opt_str("topk_method", "noaux_tc");
  c.quantization = parse_quant(f);
  c.engram = parse_engram(f);

  if (!v4) {
    c.intermediate_size = f.req_int("intermediate_size");
    c.kv_lora_rank = f.req_int("kv_lora_rank");
    c.qk_nope_head_dim = f.req_int("qk_nope_head_dim");
    c.v_head_dim = f.req_int("v_head_dim");
    c.first_k_dense_replace = f.req_int("first_k_dense_replace");
    c.moe_layer_freq = f.opt_int("moe_layer_freq", 1);
    c.n_group = f.req_int("n_group");
    c.topk_group = f.req_int("topk_group");
    c.scoring_func = parse_scoring(f, ScoringFunc::Sigmoid);
    if (c.arch == Arch::DeepseekV32) {
      c.index_n_heads = f.req_int("index_n_heads");
      c.index_head_dim = f.req_int("index_head_dim");
      c.index_topk = f.req_int("index_topk");
    } else {
      // V3 has no indexer: index keys on a deepseek_v3 config are a contradiction.
      for (const char* k : {"index_n_heads", "index_head_dim", "index_topk"})
        if (f.has(k))
          throw Error(source + ": key '" + k +
                      "' needs model_type deepseek_v32 or deepseek_v4 (the config says deepseek_v3)");
    }
    for (const char* k : {"hc_mult", "hc_sinkhorn_iters", "compress_ratios", "o_groups", "num_hash_layers"})
      if (f.has(k))
        throw Error(source + ": key '" + k + "' is a deepseek_v4 key but model_type is " +
                    std::string(arch_name(c.arch)));
  } else {
    c.intermediate_size = f.opt_int("intermediate_size", 0);
    c.scoring_func = parse_scoring(f, ScoringFunc::SqrtSoftplus);
    c.head_dim = f.req_int("head_dim");
    c.o_groups = f.req_int("o_groups");
    c.o_lora_rank = f.req_int("o_lora_rank");
    c.sliding_window = f.req_int("sliding_window");
    c.compress_ratios = f.req_int_array("compress_ratios");
    c.compress_rope_theta = f.req_num("compress_rope_theta");
    c.hc_mult = f.req_int("hc_mult");
    c.hc_sinkhorn_iters = f.req_int("hc_sinkhorn_iters");
    c.hc_eps = f.req_num("hc_eps");
    c.index_n_heads = f.req_int("index_n_heads");
    c.index_head_dim = f.req_int("index_head_dim");
    c.index_topk = f.req_int("index_topk");
    c.num_hash_layers = f.opt_int("num_hash_layers", 0);
    c.swiglu_limit = f.opt_num("swiglu_limit", 0);
    c.expert_dtype = f.opt_str("expert_dtype", "");
  }
  validate_config(c);
  return c;
}

ModelConfig load_hf_config(const std::filesystem::path& config_json) {
  const std::string file = config_json.string();
  const std::string text = read_input_file(config_json, "config file", uint64_t{16} << 20);
  // Strict parse: names the byte offset of a syntax error and rejects duplicate keys.
  return parse_hf_config(parse_json_strict(text, file, 0), file);
}

void add_generation_config_eos(ModelConfig& c, const std::filesystem::path& generation_config_json) {
  const std::string file = generation_config_json.string();
  const std::string text = read_input_file(generation_config_json, "generation config file", uint64_t{16} << 20);
  const json j = parse_json_strict(text, file, 0);
  const Fields f(j, file);
  for (int64_t id : eos_ids(f)) {
    if (id < 0 || id >= c.vocab_size)
      f.fail("eos_token_id", "= " + j["eos_token_id"].dump() + " holds " + std::to_string(id) +
                                 ", outside the model's vocabulary of " + std::to_string(c.vocab_size) +
                                 " (vocab_size in " + c.source + ")");
    if (id != c.eos_token_id &&
        std::find(c.extra_eos_token_ids.begin(), c.extra_eos_token_ids.end(), id) == c.extra_eos_token_ids.end())
      c.extra_eos_token_ids.push_back(id);
  }
}

json to_hf_config_json(const ModelConfig& c) {
  const bool v4 = c.is_v4();
  json j = json::object();
  j["model_type"] = std::string(arch_name(c.arch));
  j["architectures"] = json::array({c.arch == Arch::DeepseekV3    ? "DeepseekV3ForCausalLM"
                                    : c.arch == Arch::DeepseekV32 ? "DeepseekV32ForCausalLM"
                                                                  : "DeepseekV4ForCausalLM"});
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_nextn_predict_layers"] = c.num_nextn_predict_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["moe_intermediate_size"] = c.moe_intermediate_size;
  j["n_routed_experts"] = c.n_routed_experts;
  j["n_shared_experts"] = c.n_shared_experts;
  j["num_experts_per_tok"] = c.num_experts_per_tok;
  j["qk_rope_head_dim"] = c.qk_rope_head_dim;
  j["q_lora_rank"] = c.q_lora_rank > 0 ? json(c.q_lora_rank) : json(nullptr);
  j["routed_scaling_factor"] = c.routed_scaling_factor;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else {
    const RopeScaling& r = c.rope_scaling;
    j["rope_scaling"] = {{"type", r.type},
                         {"factor", r.factor},
                         {"original_max_position_embeddings", r.original_max_position_embeddings},
                         {"beta_fast", r.beta_fast},
                         {"beta_slow", r.beta_slow},
                         {"mscale", r.mscale},
                         {"mscale_all_dim", r.mscale_all_dim}};
  }
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["bos_token_id"] = c.bos_token_id;
  if (c.extra_eos_token_ids.empty()) {
    j["eos_token_id"] = c.eos_token_id;
  } else {
    j["eos_token_id"] = json::array({c.eos_token_id});
    for (int64_t id : c.extra_eos_token_ids) j["eos_token_id"].push_back(id);
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["norm_topk_prob"] = c.norm_topk_prob;
  j["topk_method"] = c.topk_method;
  j["scoring_func"] = std::string(scoring_func_name(c.scoring_func));
  j["hidden_act"] = "silu";
  if (!v4) {
    j["intermediate_size"] = c.intermediate_size;
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["qk_nope_head_dim"] = c.qk_nope_head_dim;
    j["v_head_dim"] = c.v_head_dim;
    j["first_k_dense_replace"] = c.first_k_dense_replace;
    j["moe_layer_freq"] = c.moe_layer_freq;
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
  } else {
    if (c.intermediate_size > 0) j["intermediate_size"] = c.intermediate_size;
    j["head_dim"] = c.head_dim;
    j["o_groups"] = c.o_groups;
    j["o_lora_rank"] = c.o_lora_rank;
    j["sliding_window"] = c.sliding_window;
    j["compress_ratios"] = c.compress_ratios;
    j["compress_rope_theta"] = c.compress_rope_theta;
    j["hc_mult"] = c.hc_mult;
    j["hc_sinkhorn_iters"] = c.hc_sinkhorn_iters;
    j["hc_eps"] = c.hc_eps;
    j["num_hash_layers"] = c.num_hash_layers;
    j["swiglu_limit"] = c.swiglu_limit;
    if (!c.expert_dtype.empty()) j["expert_dtype"] = c.expert_dtype;
  }
  if (c.arch != Arch::DeepseekV3) {
    j["index_n_heads"] = c.index_n_heads;
    j["index_head_dim"] = c.index_head_dim;
    j["index_topk"] = c.index_topk;
  }
  if (c.quantization.present) {
    const QuantizationConfig& q = c.quantization;
    json o = q.raw.is_object() ? q.raw : json::object();
    if (!q.quant_method.empty()) o["quant_method"] = q.quant_method;
    if (!q.fmt.empty()) o["fmt"] = q.fmt;
    if (!q.scale_fmt.empty()) o["scale_fmt"] = q.scale_fmt;
    if (!q.activation_scheme.empty()) o["activation_scheme"] = q.activation_scheme;
    if (!q.weight_block_size.empty()) o["weight_block_size"] = q.weight_block_size;
    j["quantization_config"] = o;
  }
  if (c.engram.enabled) {
    const EngramConfig& e = c.engram;
    j["engram"] = {{"layer_ids", e.layer_ids},
                   {"max_ngram_size", e.max_ngram_size},
                   {"n_head_per_ngram", e.n_head_per_ngram},
                   {"n_embed_per_ngram", e.n_embed_per_ngram},
                   {"engram_vocab_size", e.vocab_sizes},
                   {"kernel_size", e.kernel_size},
                   {"pad_id", e.pad_id},
                   {"seed", e.seed}};
  }
  return j;
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  if (is_v4()) return true;
  return layer >= first_k_dense_replace && moe_layer_freq > 0 && layer % moe_layer_freq == 0;
}

int64_t ModelConfig::compress_ratio(int64_t layer) const {
  if (!is_v4() || layer < 0 || layer >= static_cast<int64_t>(compress_ratios.size())) return 0;
  return compress_ratios[static_cast<size_t>(layer)];
}

bool ModelConfig::is_engram_layer(int64_t layer) const {
  if (!engram.enabled) return false;
  for (int id : engram.layer_ids)
    if (id == layer) return true;
  return false;
}

}  // namespace strata
