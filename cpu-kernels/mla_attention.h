// Multi-head latent attention (DeepSeek-V2/V3 MLA) of one sequence's new tokens over its
// latent cache: the attention core the V3 / V3.2 model composes with its projections. The
// key/value up-projection is applied per head either to the queries and the output
// (absorbed: scores against the cached latent directly, the decode form) or to the cache
// (decompressed: keys and values expanded per head, the prefill form); both give the same
// math. Heads run in parallel on the compute arena.
#pragma once

#include <cstdint>

#include "cpu-kernels/weight_view.h"

namespace strata {

struct ActQ8;  // qdot.h

// The per-head up-projection, from either wkv_b [H·(nope+v), kv_lora] or the split GGUF form
// wk_b [H, kv_lora, nope] (each head's key half transposed) + wv_b [H, v, kv_lora].
struct MlaUp {
  bool split = false;
  WeightView kv_b, k_b, v_b;
  int64_t nope = 0, v = 0, kv_lora = 0;

  // q_lat[t] = K_hᵀ q_nope[t]  (nope -> kv_lora) for n tokens.
  void absorb_q(int64_t h, const float* q, int64_t n, int64_t ldq, float* out, int64_t ldo) const;
  // k_nope[s] = K_h latent[s]  (kv_lora -> nope). q8: lat's rows quantized (linear_rows), or null.
  void keys(int64_t h, const float* lat, int64_t n, float* out, const ActQ8* const* q8 = nullptr) const;
  // v[s] = V_h latent[s]  (kv_lora -> v); also out_h = V_h o_lat.
  void values(int64_t h, const float* lat, int64_t n, int64_t ldl, float* out, int64_t ldo,
              const ActQ8* const* q8 = nullptr) const;
};

struct MlaShape {
  int64_t heads = 0, nope = 0, rope = 0, v = 0, kv_lora = 0;
  float scale = 1;  // softmax scale
};

// out [n, H, v] = attention of queries q [n, H, nope + rope] (positions n_past .. n_past+n-1)
// over latent [n_ctx, kv_lora] and k_rope [n_ctx, rope], n_ctx = n_past + n (the new tokens'
// rows already in place). Token t sees keys s <= n_past + t, and with `allowed` [n, n_ctx]
// only those marked 1.
void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                   const float* k_rope, const uint8_t* allowed, bool absorbed, float* out);

// The same over caches of bf16 rows (--cache-type-k bf16): each row widened to f32 (exactly)
// as it is read, so the result is the f32 form's over the rounded cache.
void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const uint16_t* latent,
                   const uint16_t* k_rope, const uint8_t* allowed, bool absorbed, float* out);

// The DeepSeek Sparse Attention indexer's choice (V3.2): for each new token t the top_k keys
// s <= n_past + t by Σ_h w[t][h]·relu(q[t][h] · keys[s]) (ties to the earlier key), marked 1 in
// allowed [n, n_past + n] (zeroed first). q [n, nh, hd], w [n, nh], keys [n_past + n, hd].
void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh, int64_t hd,
                int64_t top_k, uint8_t* allowed);
// The same over keys stored as bf16 rows (--cache-type-k bf16; index_scores widens them).
void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                int64_t hd, int64_t top_k, uint8_t* allowed);

}  // namespace strata
