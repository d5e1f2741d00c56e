// A model as the placement planner sees it (memory-tier/planner.h): every tensor, and every
// routed expert as one item, with its bytes and how much of it a decoded token reads.
#pragma once

#include <string>

#include "memory-tier/planner.h"
#include "runtime/model/model_files.h"

namespace strata {

// From the checkpoint's own tensors (exact bytes as stored).
PlanInput plan_input_from_model(const ModelFiles& m);

// What-if sizing from a config alone: matrices stored as `weight_type` — a GGUF type (f16,
// bf16, q8_0, q4_0, q4_k, q5_k, q6_k; rows rounded up to whole blocks), "fp8" (E4M3 with
// 128×128 scales, as DeepSeek publishes V3) or "fp4" (MXFP4 routed experts, FP8 elsewhere,
// as DeepSeek publishes V4). Norms and small parameters f32, routers bf16 (f32 for GGUF types).
// Throws strata::Error naming an unknown weight type.
PlanInput plan_input_from_config(const ModelConfig& c, const std::string& weight_type, const std::string& name);

// The KV cache as the runtime allocates it (f32 rows; with bf16, --cache-type-k bf16, the keys
// attention and the indexers read in bf16: V3/V3.2's latent, rope and indexer rows, V4's window
// ring and both compressors' rows), into in.kv_fixed_bytes, in.kv_terms and
// in.kv_bytes_per_token: V3/V3.2 one latent + rope row (+ the V3.2 indexer key) per token and
// layer; V4 each layer's sliding-window ring (fixed) and per compressor its block buffers (f32,
// fixed) and one row per `ratio` tokens.
void kv_layout(const ModelConfig& c, PlanInput& in, bool bf16 = false);

// What --cache-type-k auto (the default) keeps the cache in: bf16 where no GPU computes, else
// f32 (the CUDA attention reads either; f32 stays its default until its bf16 cores have run on
// a device).
inline bool kv_bf16_by_default(const ModelConfig&, bool gpu_executes) { return !gpu_executes; }

}  // namespace strata
