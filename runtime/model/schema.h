// Every canonical tensor of an architecture with its shape, from the config alone
// (runtime/format/canonical_names.md). Block-scale companions (`*.scale`) of quantized
// weights are a property of the file format and are not listed.
//
// DeepSeek-V3 / V3.2 (per layer N, `layers.N.`):
//   attn_norm.weight, ffn_norm.weight                               [hidden]
//   attn.wq.weight [heads·(nope+rope), hidden]                      (q_lora_rank == 0)
//   attn.wq_a.weight [q_lora, hidden], attn.q_norm.weight [q_lora],
//   attn.wq_b.weight [heads·(nope+rope), q_lora]                    (q_lora_rank > 0)
//   attn.wkv_a.weight [kv_lora+rope, hidden], attn.kv_norm.weight [kv_lora],
//   attn.wkv_b.weight [heads·(nope+v), kv_lora], attn.wo.weight [hidden, heads·v]
//   V3.2: attn.indexer.wq_b.weight [ih·id, q_lora], attn.indexer.wk.weight [id, hidden],
//         attn.indexer.k_norm.{weight,bias} [id], attn.indexer.weights_proj.weight [ih, hidden]
//   dense layer: ffn.w1/w3.weight [inter, hidden], ffn.w2.weight [hidden, inter]
//   MoE layer:   ffn.gate.weight [n_routed, hidden], ffn.gate.bias [n_routed] (topk_method
//                noaux_tc), ffn.experts.E.w1/w3.weight [moe_inter, hidden],
//                ffn.experts.E.w2.weight [hidden, moe_inter], ffn.shared_experts.w1/w2/w3
//                with inter = moe_inter·n_shared
//   MTP layer M = num_hidden_layers + i: a MoE layer plus enorm/hnorm [hidden],
//   eh_proj [hidden, 2·hidden], shared_head.norm [hidden], and (optional: copies of the main
//   ones) embed.weight / shared_head.head.weight [vocab, hidden].
//   Global: embed.weight [vocab, hidden], norm.weight [hidden], head.weight [vocab, hidden]
//   (absent when tie_word_embeddings).
//
// DeepSeek-V4 (inference/model.py of the V4 release; hc = hc_mult, mix = (2+hc)·hc, D = head_dim):
//   Global: embed, norm, head as above; hc_head_fn [hc, hc·hidden], hc_head_base [hc],
//   hc_head_scale [1].
//   Per layer: attn_norm, ffn_norm; hc_{attn,ffn}_fn [mix, hc·hidden], hc_{attn,ffn}_base [mix],
//   hc_{attn,ffn}_scale [3]; attn.attn_sink [heads]; attn.wq_a [q_lora, hidden],
//   attn.q_norm [q_lora], attn.wq_b [heads·D, q_lora], attn.wkv [D, hidden], attn.kv_norm [D],
//   attn.wo_a [o_groups·o_lora, heads·D/o_groups], attn.wo_b [hidden, o_groups·o_lora];
//   ratio r > 0: attn.compressor.{wkv,wgate} [c·D, hidden], attn.compressor.ape [r, c·D],
//   attn.compressor.norm [D] with c = 2 when r == 4 (overlapping windows) else 1;
//   r == 4 adds attn.indexer.wq_b [ih·id, q_lora], attn.indexer.weights_proj [ih, hidden] and
//   attn.indexer.compressor.{wkv,wgate} [2·id, hidden], .ape [4, 2·id], .norm [id];
//   ffn.gate.weight [n_routed, hidden]; hash layers (N < num_hash_layers):
//   ffn.gate.tid2eid [vocab, top_k] (integers, no bias), other layers ffn.gate.bias [n_routed];
//   experts and shared experts as in V3 (shared inter = moe_inter·n_shared).
//   MTP block i: `mtp.i.` + the per-layer tensors (compress ratio compress_ratios[layers+i])
//   + e_proj, h_proj [hidden, hidden], enorm, hnorm, norm [hidden], hc_head_{fn,base,scale}.
//
// Engram (layers in engram.layer_ids, prefix `layers.N.engram.`; hc = hc_mult on V4, else 1;
// E = (max_ngram_size-1)·n_embed_per_ngram; rows = sum of engram_head_sizes(layer)):
//   multi_head_embedding.embedding.weight [rows, n_embed_per_ngram/n_head_per_ngram]
//   value_proj.{weight [hidden, E], bias [hidden]}, key_projs.i.{weight [hidden, E], bias [hidden]},
//   norm1.i.weight / norm2.i.weight [hidden] (key / query norms), short_conv.norms.i.weight
//   [hidden], short_conv.conv.weight [hc·hidden, 1, kernel_size] (depthwise), i < hc;
//   multipliers [max_ngram_size] and head_sizes [(max_ngram_size-1)·n_head_per_ngram] (integers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/config/model_config.h"

namespace strata {

struct TensorSpec {
  // Weight:   quantizable matrix (a generator gives it the requested quant type).
  // Norm:     RMSNorm/LayerNorm scale vector.       Bias: additive vector.
  // Table:    embedding table (rows gathered by id).
  // Scalar:   small f32 parameters (mHC fn/base/scale, attention sinks, compressor ape,
  //           depthwise conv kernels).
  // IntTable: integer table (hash routing tid2eid, Engram hash constants).
  // Matrix:   a matrix the published checkpoints keep in bf16/f32 (routers, compressor
  //           wkv/wgate, V4 indexer weights_proj): not quantized by a generator.
  enum class Kind { Weight, Norm, Bias, Table, Scalar, IntTable, Matrix };

  std::string name;            // canonical
  std::vector<int64_t> shape;  // outermost first ([out, in] for a linear layer)
  Kind kind = Kind::Weight;
  bool optional = false;       // may be absent from a checkpoint

  int64_t numel() const;
  bool operator==(const TensorSpec&) const = default;
};

std::string_view kind_name(TensorSpec::Kind k);  // "weight", "norm", ...

// Tensors outside any layer (embedding, final norm, head, V4 hc_head_*).
std::vector<TensorSpec> global_schema(const ModelConfig& c);
// Tensors of main layer `layer` (0 <= layer < num_hidden_layers), Engram included.
std::vector<TensorSpec> layer_schema(const ModelConfig& c, int64_t layer);
// Tensors of MTP module i (0 <= i < num_nextn_predict_layers).
std::vector<TensorSpec> mtp_schema(const ModelConfig& c, int64_t i);
// Everything: global, then every layer in order, then (include_mtp) every MTP module.
std::vector<TensorSpec> model_schema(const ModelConfig& c, bool include_mtp = false);

// Parameters of the main model (MTP excluded, optional tensors excluded, embedding
// included). active = everything except routed experts, plus num_experts_per_tok of
// n_routed_experts per MoE layer (hash layers too). strata::Error on int64 overflow.
struct ParamCounts {
  int64_t total = 0, active = 0;
};
ParamCounts count_params(const ModelConfig& c);

}  // namespace strata
