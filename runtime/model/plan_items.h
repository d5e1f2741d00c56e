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

// KV-cache bytes per token over all layers: V3/V3.2 MLA caches (kv_lora + rope) bf16 per
// layer (+ the V3.2 indexer key, FP8 with an f32 scale); V4 caches head_dim bf16 divided by
// each layer's compression ratio (approximate: the sliding window is not counted).
uint64_t kv_bytes_per_token(const ModelConfig& c);

}  // namespace strata
