// DeepSeek-V4 (`deepseek_v4`: V4-Flash, V4-Pro) on the CPU, from the published model and
// inference code. Every op goes through cpu-kernels/; matrices stay in their stored type
// (FP8 with E8M0 block scales, FP4 experts with E8M0 per-32 scales, bf16, ...).
//
// Residual: hc_mult streams with manifold-constrained hyper-connections (cpu-kernels/mhc.h)
// around attention and FFN; the head mixes the streams once more before the final norm.
// Attention (one KV head of head_dim, values = keys):
//   qr = q_norm(wq_a x);  q = wq_b qr, each head RMS-normalized (no weight), RoPE on its last
//   rope dims;  kv = kv_norm(wkv x), RoPE on its last rope dims, FP8 e4m3 quantize-dequantize
//   of the non-rope dims in blocks of 64 (power-of-two scales).
//   Keys of a query at position t: the sliding window (positions t-window+1..t, a ring cache of
//   `sliding_window` rows) plus compressed rows (runtime/model/v4_compressor.h) on layers with
//   a compress ratio: all existing rows, or on ratio-4 layers the indexer's top index_topk.
//   Softmax with a per-head sink (Σ e^s + e^sink), scale head_dim^-1/2; the output's rope dims
//   rotated back by the query's angle; grouped low-rank output: o_groups slices through wo_a
//   (o_lora_rank each), then wo_b.
//   RoPE: compressed layers use compress_rope_theta with the config's YaRN; ratio-0 layers
//   rope_theta without YaRN; interleaved pairs; no YaRN factor in the softmax scale.
// Indexer (ratio-4 layers): iq = indexer.wq_b(qr) per index head, RoPE, Hadamard rotation,
//   FP4 e2m1 quantize-dequantize (blocks of 32, power-of-two scales); keys from the indexer's
//   own compressor (rows rotated and FP4 quantize-dequantized); score(t, j) =
//   Σ_h relu(iq_h · k_j) · w_h with w = weights_proj(x) · index_head_dim^-1/2 · heads^-1/2;
//   top-k rows, lowest row first on ties.
// MoE: sqrtsoftplus (or the configured) scores; the first num_hash_layers layers take their
//   experts from tid2eid[token], the others top-k of score + bias; weights = unbiased scores
//   normalized × routed_scaling_factor; experts and the shared expert clamp at swiglu_limit:
//   w2(silu(min(w1 x, limit)) · clamp(w3 x, ±limit)).
// Deviations: activations stay f32 between ops (the published code rounds some to bf16).
#pragma once

#include <memory>

#include "runtime/model/causal_lm.h"

namespace strata {

std::unique_ptr<CausalLM> make_deepseek_v4(const ModelFiles& m, const ModelOptions& opts);

}  // namespace strata
