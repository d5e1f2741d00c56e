#include "runtime/model/device_workspace.h"

#include <algorithm>

#include "gpu-kernels/op_workspace.h"
#include "runtime/backend/device.h"

namespace strata {
namespace {

// One DeviceScratch buffer of `bytes`, as the reserved workspace rounds it.
uint64_t take(uint64_t bytes) { return Device::workspace_round(bytes); }
uint64_t floats(int64_t n) { return take(static_cast<uint64_t>(std::max<int64_t>(n, 0)) * sizeof(float)); }

// run_on_device (device_layer.cpp): the step's rows in and out, its positions.
uint64_t io(int64_t N, int64_t d) { return 2 * floats(N * d) + take(static_cast<uint64_t>(N) * sizeof(int64_t)); }

// An MLP of `inter` on the device (the CUDA mlp's gate and up rows).
uint64_t mlp(int64_t N, int64_t inter) { return 2 * floats(N * inter); }

// V3 / V3.2 attention_on: its buffers live to the end; the ops' work buffers one at a time.
// Up to N sequences (spans) add a rounding each to the per-span index masks.
uint64_t mla_layer_bytes(const ModelConfig& c, int64_t N, int64_t ctx) {
  const int64_t d = c.hidden_size, H = c.num_attention_heads, dq = c.qk_nope_head_dim + c.qk_rope_head_dim,
                dl = c.kv_lora_rank, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
  uint64_t b = io(N, d) + floats(N * d) + floats(N * H * dq) + floats(N * (dl + dr)) + floats(N * H * dv);
  if (c.q_lora_rank > 0) b += floats(N * c.q_lora_rank);
  const bool indexer = c.arch == Arch::DeepseekV32;
  if (indexer) {
    const int64_t nh = c.index_n_heads, hd = c.index_head_dim;
    b += floats(N * nh * hd) + floats(N * hd) + floats(N * nh);
    b += static_cast<uint64_t>(N * ctx) + static_cast<uint64_t>(N) * Device::kWorkspaceAlign;  // allowed masks
  }
  // The absorbed MLA's chunks: at most max(kMlaScoreFloats, one token's rows) floats, never
  // more than all N tokens' rows.
  const int64_t per = H * (ctx + 2 * dl);
  const int64_t chunk = std::min(N * per, std::max(gpu::kMlaScoreFloats, per));
  uint64_t op = take(static_cast<uint64_t>(chunk) * sizeof(float) + 256);
  if (indexer) op = std::max(op, take(gpu::index_topk_workspace_bytes(N, ctx)));
  return b + op;
}

// V4 attention_on: the compressors' rows while they append, then the gathered keys' ops; around
// it the sublayer's streams in and out and its mixing (attention_sublayer), or with the mixing
// on the host only the attention's rows.
uint64_t v4_layer_bytes(const ModelConfig& c, int64_t N, int64_t ctx, int64_t ratio) {
  const int64_t d = c.hidden_size, H = c.num_attention_heads, D = c.head_dim, nh = c.index_n_heads,
                hd = c.index_head_dim, topk = c.index_topk, hc = c.hc_mult;
  const uint64_t base = floats(N * c.q_lora_rank) + floats(N * H * D) + floats(N * D);
  uint64_t compress = 0;
  if (ratio > 0) compress = 2 * floats(N * (ratio == 4 ? 2 : 1) * D);
  if (ratio == 4) compress = std::max(compress, 2 * floats(N * 2 * hd));
  const int64_t max_keys = c.sliding_window + std::max(topk, ctx);
  uint64_t held = base + floats(N * H * D) + take(static_cast<uint64_t>(max_keys) * sizeof(void*));
  uint64_t op = take(gpu::sink_attention_workspace_bytes(H, max_keys));
  if (ratio == 4) {
    held += floats(N * nh * hd) + floats(N * nh);
    held += static_cast<uint64_t>(N * (topk + 1)) * sizeof(int64_t) + 2 * static_cast<uint64_t>(N) * Device::kWorkspaceAlign;
    op = std::max(op, take(gpu::index_pick_workspace_bytes(N, ctx - N, ratio)));
  }
  const uint64_t low = floats(N * c.o_groups * c.o_lora_rank);
  const uint64_t attention = std::max({base + compress, held + op, held + low});
  const uint64_t mixing = io(N, hc * d) + 2 * floats(N * d) + floats(N * hc) + floats(N * hc * hc);
  return std::max(io(N, d) + attention,
                  mixing + std::max(attention, take(gpu::hc_workspace_bytes(N, hc, d))));
}

}  // namespace

uint64_t device_step_workspace(const ModelConfig& c, const StepWorkspace& w) {
  const int64_t ctx = std::max<int64_t>(w.context, 1);
  const int64_t N = std::max<int64_t>(1, std::min(w.step_tokens > 0 ? w.step_tokens : ctx, ctx));
  const int64_t d = c.hidden_size;
  uint64_t need = 0;
  if (c.is_v4()) {
    for (int64_t li = 0; li < c.num_hidden_layers; ++li) need = std::max(need, v4_layer_bytes(c, N, ctx, c.compress_ratio(li)));
  } else {
    need = mla_layer_bytes(c, N, ctx);
  }
  // The output head, kDeviceHeadRows rows of hidden states in and of logits out at a time.
  const int64_t rows = std::min(N, kDeviceHeadRows);
  need = std::max(need, floats(rows * d) + floats(rows * c.vocab_size) + take(0));
  bool dense = false, moe = false;
  for (int64_t li = 0; li < c.num_hidden_layers; ++li) (c.is_moe_layer(li) ? moe : dense) = true;
  if (dense && c.intermediate_size > 0) need = std::max(need, io(N, d) + mlp(N, c.intermediate_size));
  if (moe) {
    if (c.n_shared_experts > 0) need = std::max(need, 2 * floats(N * d) + mlp(N, c.n_shared_experts * c.moe_intermediate_size));
    // The routed share: one expert's rows in and out, its MLP, and with prefill offload two
    // slots of an expert's weights (three matrices and their scales, each rounded), one
    // computing while the next is copied in.
    uint64_t routed = 2 * floats(N * d) + mlp(N, c.moe_intermediate_size);
    if (w.offload_expert_bytes) routed += 2 * take(w.offload_expert_bytes + 6 * Device::kWorkspaceAlign);
    need = std::max(need, routed);
  }
  // A product of many tokens through cuBLAS: one chunk of decoded rows on top of whatever is
  // held then (at most kBlasChunkFloats: no matrix has more columns).
  if (N >= gpu::kBlasMinTokens) need += take(static_cast<uint64_t>(gpu::kBlasChunkFloats) * sizeof(float));
  return need;
}

uint64_t largest_expert_bytes(const PlanInput& in) {
  uint64_t b = 0;
  for (const PlanItem& it : in.items)
    if (it.expert >= 0) b = std::max(b, it.bytes);
  return b;
}

void plan_step_workspace(const ModelConfig& c, const PlanInput& in, int64_t step_tokens, bool offload, PlanOptions& po) {
  po.step_tokens = step_tokens > 0 ? std::min(step_tokens, po.context) : po.context;
  const uint64_t expert = offload ? largest_expert_bytes(in) : 0;
  po.gpu_workspace_bytes = device_step_workspace(c, {step_tokens, po.context, expert});
  po.gpu_workspace_at = [c, step_tokens, expert](int64_t context) {
    return device_step_workspace(c, {step_tokens, context, expert});
  };
}

}  // namespace strata
