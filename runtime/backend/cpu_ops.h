// The CPU's Ops: the kernels of cpu-kernels/ on the compute arena's threads.
#pragma once

#include "runtime/backend/ops.h"

namespace strata {

class CpuOps : public Ops {
 public:
  void linear(const WeightView& w, const float* x, int64_t n, float* out) const override;
  void mlp(const Mlp& m, const float* x, int64_t n, float* out, float swiglu_limit) const override;
  // The experts share the cores instead of taking turns (one oneTBB job, each product splitting
  // its rows further), so a decode step pays one fork-join per layer rather than three per
  // expert; with a NUMA split each node's arena runs its own jobs, all nodes at once. Jobs whose
  // products take oneDNN (prefill-sized batches) run first, one after another: those products
  // take every core already.
  void mlp_batch(std::span<const MlpJob> jobs, float swiglu_limit) const override;
  void gather_rows(const WeightView& table, const int32_t* rows, int64_t n, float* out) const override;
  void route(const RouterParams& p, const float* logits, const float* bias, const int32_t* fixed, int64_t n,
             int32_t* ids, float* weights) const override;
  void hc_pre(const HcParams& p, const HcView& w, const float* X, int64_t n, float* u, float* post,
              float* comb) const override;
  void hc_post(const HcParams& p, const float* f, const float* post, const float* comb, float* X,
               int64_t n) const override;
  void hc_head(const HcParams& p, const HcView& w, const float* X, float* u) const override;
  void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t d, float eps) const override;
  void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t d,
                  float eps) const override;
  void rope(const Rope& r, bool halves, float* x, int64_t n, int64_t heads, int64_t head_stride, int64_t token_stride,
            const int64_t* pos) const override;
  void rope_at(const Rope& r, float* x, int64_t heads, int64_t head_stride, int64_t pos) const override;
  void hadamard_rows(float* x, int64_t n, int64_t dim) const override;
  void quant_rows(float* x, int64_t n, int64_t stride, int64_t dim, int64_t block, RowQuant q) const override;
  void add(const float* a, const float* b, float* out, int64_t n) const override;
  void linear_rows(const WeightView& w, int64_t r0, int64_t nr, const float* x, int64_t n, int64_t ldx, float* y,
                   int64_t ldy) const override;
  void scale(float* x, int64_t n, float a) const override;
  void copy(void* dst, const void* src, uint64_t bytes) const override;
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                     const float* k_rope, const uint8_t* allowed, bool absorbed, float* out) const override;
  void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                     const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed, bool absorbed,
                     float* out) const override;
  void to_bf16(uint16_t* dst, const float* src, int64_t n) const override;
  void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh, int64_t hd,
                  int64_t top_k, uint8_t* allowed) const override;
  void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                  int64_t hd, int64_t top_k, uint8_t* allowed) const override;
  void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H, int64_t D,
                      float scale, float* out) const override;
  void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                      int64_t D, float scale, float* out) const override;
  void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                  int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count) const override;
  void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                  int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                  int64_t* count) const override;
  void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                     int64_t width, int64_t own, int64_t D, float* out) const override;
};

// The one instance (the ops hold no state).
const CpuOps& cpu_ops();

}  // namespace strata
