// Tensor names: HF, GGUF (deepseek2) and DeepSeek-native names mapped onto strata's canonical
// naming (runtime/format/canonical_names.md), and the class, layer and expert of a canonical
// name. One pattern table per format; names already canonical map to themselves.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace strata {

enum class TensorClass {
  Embedding,
  Head,
  Norm,
  Attention,
  Indexer,
  Dense,
  Router,
  SharedExpert,
  RoutedExpert,
  HyperConnection,
  Engram,
  Mtp,
  Other,
};

std::string_view class_name(TensorClass c);  // "embedding", "routed_expert", ...

// True when name follows the canonical naming (any architecture strata knows).
bool is_canonical(std::string_view name);

// HF checkpoint name -> canonical (`*.weight_scale_inv` -> `*.scale`); canonical names map to
// themselves; nullopt when the name is neither.
std::optional<std::string> canonical_from_hf(std::string_view hf);
// Canonical -> HF name; canonical names without an HF form (DeepSeek-V4 tensors, which HF
// checkpoints store under their native names) map to themselves; nullopt for non-canonical.
std::optional<std::string> hf_from_canonical(std::string_view canonical);

struct GgufNameMap {
  std::string canonical;  // for stacked experts a pattern with "{E}" in place of the expert index
  bool stacked_experts = false;
};
// GGUF name -> canonical. `blk.N.ffn_gate_exps.weight` -> {"layers.N.ffn.experts.{E}.w1.weight",
// stacked}. Canonical names map to themselves; nullopt when the name is neither.
std::optional<GgufNameMap> canonical_from_gguf(std::string_view gguf);
// Canonical -> GGUF name; for a routed expert the stacked tensor holding it. Canonical names
// without a GGUF form map to themselves; nullopt for non-canonical names.
std::optional<std::string> gguf_from_canonical(std::string_view canonical);

// Replaces "{E}" in a stacked-expert pattern by e.
std::string expert_name(std::string_view pattern, int e);

// Class of a canonical name; a layer at or past num_hidden_layers (when >= 0) is an MTP layer.
TensorClass classify(std::string_view canonical, int num_hidden_layers = -1);
int layer_of(std::string_view canonical);   // N of "layers.N.*", else -1
int expert_of(std::string_view canonical);  // E of "layers.N.ffn.experts.E.*", else -1

// "x.weight" -> "x.scale" (the block-scale companion); the name itself when it has no ".weight".
std::string scale_name_of(std::string_view weight);

}  // namespace strata
