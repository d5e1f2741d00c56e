// MLA attention over the latent cache and the V3.2 indexer's top-k (gpu_ops.h). CPU twins:
// cpu-kernels/mla_attention.cpp (mla_attention, index_topk).
//
// Every n runs the absorbed form: the up-projection's key half is folded into the queries
// (q_lat = K_hᵀ q_nope), scores are taken against the cached latent rows themselves, and the
// value half is applied once to the weighted latent sum. Both halves are read in their stored
// type by the products of linear.cu (per-head row groups; wkv_b's key half by the transposed
// per-head product), once per chunk of tokens. Tokens go in chunks whose score rows, latent
// queries and latent sums stay within kMlaScoreFloats (op_workspace.h). The caches' rows are f32,
// or bf16 (--cache-type-k bf16) widened to f32 as they are read (the CPU's bf16 forms do the same).
#include "gpu-kernels/cuda_util.cuh"
#include "gpu-kernels/op_workspace.h"

namespace strata::gpu {
namespace {

// scores[tc, h, s] for the chunk's tokens tc (global token t0 + tc): block per (tc, h), a warp
// per key s, lanes across the latent and rope dims.
template <class K>
__global__ void scores_kernel(const float* q, const float* q_lat, const K* latent, const K* k_rope,
                              const uint8_t* allowed, int64_t t0, int64_t H, int64_t nope, int64_t dr,
                              int64_t dl, int64_t n_past, int64_t n_ctx, float scale, float* scores) {
  const int64_t tc = blockIdx.x / H, h = blockIdx.x % H, t = t0 + tc;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const float* ql = q_lat + (tc * H + h) * dl;
  const float* qr = q + (t * H + h) * (nope + dr) + nope;
  float* out = scores + (tc * H + h) * n_ctx;
  for (int64_t s = warp; s < n_ctx; s += warps) {
    const bool visible = s <= n_past + t && (!allowed || allowed[t * n_ctx + s]);
    if (!visible) {  // uniform across the warp
      if (lane == 0) out[s] = -INFINITY;
      continue;
    }
    const K* ls = latent + s * dl;
    const K* rs = k_rope + s * dr;
    float acc = 0.f;
    for (int64_t c = lane; c < dl; c += 32) acc = fmaf(ql[c], widen(ls[c]), acc);
    for (int64_t c = lane; c < dr; c += 32) acc = fmaf(qr[c], widen(rs[c]), acc);
    acc = warp_sum(acc);
    if (lane == 0) out[s] = acc * scale;
  }
}

// Softmax of each row of n_ctx in place (a row of -inf only becomes zeros).
__global__ void softmax_kernel(float* scores, int64_t n_ctx) {
  __shared__ float red[32];
  float* row = scores + static_cast<int64_t>(blockIdx.x) * n_ctx;
  float m = -INFINITY;
  for (int64_t s = threadIdx.x; s < n_ctx; s += blockDim.x) m = fmaxf(m, row[s]);
  m = block_max(m, red);
  if (m == -INFINITY) {
    for (int64_t s = threadIdx.x; s < n_ctx; s += blockDim.x) row[s] = 0.f;
    return;
  }
  float sum = 0.f;
  for (int64_t s = threadIdx.x; s < n_ctx; s += blockDim.x) {
    const float e = expf(row[s] - m);
    row[s] = e;
    sum += e;
  }
  const float inv = 1.0f / block_sum(sum, red);
  for (int64_t s = threadIdx.x; s < n_ctx; s += blockDim.x) row[s] *= inv;
}

// o_lat[tc, h, c] = Σ_s p[tc, h, s] latent[s, c]: block per (tc, h), threads across c.
template <class K>
__global__ void weigh_kernel(const float* p, const K* latent, int64_t H, int64_t dl, int64_t n_ctx,
                             float* o_lat) {
  const int64_t tc = blockIdx.x / H, h = blockIdx.x % H;
  const float* pr = p + (tc * H + h) * n_ctx;
  float* o = o_lat + (tc * H + h) * dl;
  for (int64_t c = threadIdx.x; c < dl; c += blockDim.x) {
    float acc = 0.f;
    for (int64_t s = 0; s < n_ctx; ++s) {
      const float w = pr[s];
      if (w != 0.f) acc = fmaf(w, widen(latent[s * dl + c]), acc);
    }
    o[c] = acc;
  }
}

// Thread per (t, s): Σ_h w[t, h] · relu(q[t, h] · keys[s]) for visible keys, else -inf.
template <class K>
__global__ void index_scores_kernel(const float* q, const float* w, const K* keys, int64_t n, int64_t n_past,
                                    int64_t nh, int64_t hd, float* scores) {
  const int64_t n_ctx = n_past + n;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * n_ctx) return;
  const int64_t t = i / n_ctx, s = i % n_ctx;
  if (s > n_past + t) {
    scores[i] = -INFINITY;
    return;
  }
  const K* ks = keys + s * hd;
  float acc = 0.f;
  for (int64_t h = 0; h < nh; ++h) {
    const float* qh = q + (t * nh + h) * hd;
    float d = 0.f;
    for (int64_t j = 0; j < hd; ++j) d = fmaf(qh[j], widen(ks[j]), d);
    acc += w[t * nh + h] * fmaxf(d, 0.f);
  }
  scores[i] = isnan(acc) ? -INFINITY : acc;  // a NaN would rank beside every key
}

// Thread per (t, s): kept when fewer than top_k visible keys rank above it (higher score, or
// the same score and earlier).
__global__ void index_rank_kernel(const float* scores, int64_t n, int64_t n_past, int64_t top_k, uint8_t* allowed) {
  const int64_t n_ctx = n_past + n;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * n_ctx) return;
  const int64_t t = i / n_ctx, s = i % n_ctx, visible = n_past + t + 1;
  uint8_t keep = 0;
  if (s < visible) {
    const float* row = scores + t * n_ctx;
    const float me = row[s];
    int64_t above = 0;
    for (int64_t o = 0; o < visible && above < top_k; ++o) above += row[o] > me || (row[o] == me && o < s);
    keep = above < top_k;
  }
  allowed[i] = keep;
}

template <class K>
void mla_attention_of(const MlaShape& sh, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                      const K* latent, const K* k_rope, const uint8_t* allowed, float* out, void* work,
                      Stream s) {
  if (n <= 0) return;
  const int64_t H = sh.heads, dn = sh.nope, dr = sh.rope, dv = sh.v, dl = sh.kv_lora, n_ctx = n_past + n,
                dq = dn + dr;
  const int64_t chunk = mla_chunk_tokens(H, n_ctx, dl, n);
  float* q_lat = static_cast<float*>(work);
  float* o_lat = q_lat + chunk * H * dl;
  float* scores = o_lat + chunk * H * dl;
  for (int64_t t0 = 0; t0 < n; t0 += chunk) {
    const int64_t nc = t0 + chunk < n ? chunk : n - t0;
    const unsigned rows = static_cast<unsigned>(nc * H);
    const float* qc = q + t0 * H * dq;
    // q_lat[t, h] = K_hᵀ q_nope[t, h]: k_b holds K_hᵀ itself (rows per head), wkv_b K_h's rows.
    if (up.split) linear_grouped(up.k_b, 0, H * dl, dl, dl, qc, nc, H * dq, dq, q_lat, H * dl, s);
    else linear_t_heads(up.kv_b, H, dn + dv, dn, qc, nc, H * dq, dq, q_lat, H * dl, dl, s);
    scores_kernel<K><<<rows, 256, 0, cu(s)>>>(q, q_lat, latent, k_rope, allowed, t0, H, dn, dr, dl, n_past,
                                              n_ctx, sh.scale, scores);
    check_launch("mla scores");
    softmax_kernel<<<rows, 256, 0, cu(s)>>>(scores, n_ctx);
    check_launch("mla softmax");
    weigh_kernel<K><<<rows, 256, 0, cu(s)>>>(scores, latent, H, dl, n_ctx, o_lat);
    check_launch("mla weigh");
    // out[t, h] = V_h o_lat[t, h]: v_b's rows per head, or wkv_b's value rows after each head's key rows.
    float* oc = out + t0 * H * dv;
    if (up.split) linear_grouped(up.v_b, 0, H * dv, dv, dv, o_lat, nc, H * dl, dl, oc, H * dv, s);
    else linear_grouped(up.kv_b, dn, H * dv, dv, dn + dv, o_lat, nc, H * dl, dl, oc, H * dv, s);
  }
}

template <class K>
void index_topk_of(const float* q, const float* w, const K* keys, int64_t n, int64_t n_past, int64_t nh,
                   int64_t hd, int64_t top_k, uint8_t* allowed, void* work, Stream s) {
  const int64_t cells = n * (n_past + n);
  if (cells <= 0) return;
  float* scores = static_cast<float*>(work);
  index_scores_kernel<K><<<blocks_for(cells, 256), 256, 0, cu(s)>>>(q, w, keys, n, n_past, nh, hd, scores);
  check_launch("index scores");
  index_rank_kernel<<<blocks_for(cells, 256), 256, 0, cu(s)>>>(scores, n, n_past, top_k, allowed);
  check_launch("index top-k");
}

}  // namespace

void mla_attention(const MlaShape& sh, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                   const float* latent, const float* k_rope, const uint8_t* allowed, float* out, void* work,
                   Stream s) {
  mla_attention_of(sh, up, q, n, n_past, latent, k_rope, allowed, out, work, s);
}

void mla_attention(const MlaShape& sh, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                   const uint16_t* latent, const uint16_t* k_rope, const uint8_t* allowed, float* out,
                   void* work, Stream s) {
  mla_attention_of(sh, up, q, n, n_past, latent, k_rope, allowed, out, work, s);
}

void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh,
                int64_t hd, int64_t top_k, uint8_t* allowed, void* work, Stream s) {
  index_topk_of(q, w, keys, n, n_past, nh, hd, top_k, allowed, work, s);
}

void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                int64_t hd, int64_t top_k, uint8_t* allowed, void* work, Stream s) {
  index_topk_of(q, w, keys, n, n_past, nh, hd, top_k, allowed, work, s);
}

}  // namespace strata::gpu
