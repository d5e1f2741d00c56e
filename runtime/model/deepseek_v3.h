// DeepSeek-V3 / R1 / V3.1 (`deepseek_v3`) and V3.2 (`deepseek_v32`, DeepSeek Sparse
// Attention) on the CPU: the numerical reference path of strata. Every op goes through
// cpu-kernels/; matrices stay in their stored type.
//
// Per layer:  h += MLA(attn_norm(h));  h += FFN(ffn_norm(h))   (FFN dense or MoE)
// MLA:  q = wq_b(q_norm(wq_a(x)))  (or wq(x)), split per head into nope | rope dims;
//       [latent | k_rope] = wkv_a(x); latent = kv_norm(latent); k_rope shared by all heads;
//       interleaved-pair RoPE (YaRN) on the rope dims; wkv_b expands the latent into per-head
//       k_nope | v. The cache holds only latent and k_rope per token. Scores scaled by
//       (nope+rope)^-1/2 · mscale², mscale = 0.1·mscale_all_dim·ln(factor) + 1 under YaRN.
// V3.2 indexer (per layer): q = indexer.wq_b(q latent), k = LayerNorm(indexer.wk(x)); RoPE on
//       the FIRST rope dims in halves layout (not interleaved); Hadamard rotation; FP8 E4M3
//       quantize-dequantize of q and k (blocks of 128, UE8M0 scales when the checkpoint's
//       quantization_config says scale_fmt ue8m0); score(t,s) = Σ_h w_h·relu(q_h·k_s) with
//       w = weights_proj(x)·heads^-1/2·dim^-1/2; MLA attends to the top index_topk earlier
//       tokens (lowest position on ties).
#pragma once

#include <memory>

#include "runtime/model/causal_lm.h"

namespace strata {

std::unique_ptr<CausalLM> make_deepseek_v3(const ModelFiles& m, const ModelOptions& opts);

}  // namespace strata
