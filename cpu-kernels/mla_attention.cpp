#include "cpu-kernels/mla_attention.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"
#include "cpu-kernels/qdot.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"

namespace strata {

void MlaUp::absorb_q(int64_t h, const float* q, int64_t n, int64_t ldq, float* out, int64_t ldo) const {
  if (split) linear_rows(k_b, h * kv_lora, kv_lora, q, n, ldq, out, ldo);
  else linear_t_rows(kv_b, h * (nope + v), nope, q, n, ldq, out, ldo);
}

void MlaUp::keys(int64_t h, const float* lat, int64_t n, float* out, const ActQ8* const* q8) const {
  if (split) linear_t_rows(k_b, h * kv_lora, kv_lora, lat, n, kv_lora, out, nope);
  else linear_rows(kv_b, h * (nope + v), nope, lat, n, kv_lora, out, nope, q8);
}

void MlaUp::values(int64_t h, const float* lat, int64_t n, int64_t ldl, float* out, int64_t ldo,
                   const ActQ8* const* q8) const {
  if (split) linear_rows(v_b, h * v, v, lat, n, ldl, out, ldo, q8);
  else linear_rows(kv_b, h * (nope + v) + nope, v, lat, n, ldl, out, ldo, q8);
}

namespace {

// The latent rows quantized once for every head's key and value products (decompressed
// attention), where those read quantized activations: each head's products would quantize all
// n_ctx rows again, twice. False where they do not.
bool quantize_latent(const MlaUp& up, const float* latent, int64_t n_ctx, std::vector<ActQ8>& q8,
                     std::vector<const ActQ8*>& ptrs) {
  const WeightView& w = up.split ? up.v_b : up.kv_b;  // split: the keys are a transposed product
  unsigned orders = 0;
  if (!reads_q8(w, up.v, n_ctx, orders)) return false;
  if (!up.split) {
    unsigned key_orders = 0;
    reads_q8(w, up.nope, n_ctx, key_orders);
    orders |= key_orders;
  }
  if (q8.size() < static_cast<size_t>(n_ctx)) q8.resize(static_cast<size_t>(n_ctx));
  ptrs.resize(static_cast<size_t>(n_ctx));
  tbb::parallel_for(int64_t{0}, n_ctx, [&](int64_t k) {
    quantize_act_q8(latent + k * up.kv_lora, up.kv_lora, q8[static_cast<size_t>(k)], orders);
    ptrs[static_cast<size_t>(k)] = &q8[static_cast<size_t>(k)];
  });
  return true;
}

}  // namespace

void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                   const float* k_rope, const uint8_t* allowed, bool absorbed, float* out) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t H = s.heads, dn = s.nope, dr = s.rope, dv = s.v, dl = s.kv_lora, dq = dn + dr, n_ctx = n_past + n;
  auto visible = [&](int64_t t, int64_t k) {
    return k <= n_past + t && (!allowed || allowed[static_cast<size_t>(t * n_ctx + k)]);
  };
  const ScratchLease<std::vector<ActQ8>> latent_q8_lease;
  const ScratchLease<std::vector<const ActQ8*>> latent_ptrs_lease;
  // Heads are independent: one parallel job over them, each with its own (reused) scratch.
  run_in_compute_arena([&] {
    const ActQ8* const* lat_q8 =
        !absorbed && quantize_latent(up, latent, n_ctx, *latent_q8_lease, *latent_ptrs_lease) ? latent_ptrs_lease->data()
                                                                                            : nullptr;
    tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
      if (absorbed) {
        const ScratchFloats scores(static_cast<size_t>(n_ctx));
        const ScratchFloats q_lat(static_cast<size_t>(n * dl)), o_lat(static_cast<size_t>(dl));
        up.absorb_q(h, q + h * dq, n, H * dq, q_lat.data(), dl);
        for (int64_t t = 0; t < n; ++t) {
          const float* ql = q_lat.data() + t * dl;
          const float* qr = q + (t * H + h) * dq + dn;
          for (int64_t k = 0; k < n_ctx; ++k) {
            if (!visible(t, k)) {
              scores[k] = kNegInf;
              continue;
            }
            const float a = dot_f32(ql, latent + k * dl, dl);
            const float b = dot_f32(qr, k_rope + k * dr, dr);
            scores[k] = (a + b) * s.scale;
          }
          softmax(scores.data(), n_ctx);
          std::fill(o_lat.data(), o_lat.data() + dl, 0.0f);
          for (int64_t k = 0; k < n_ctx; ++k)
            if (scores[k] != 0) axpy_f32(scores[k], latent + k * dl, o_lat.data(), dl);
          up.values(h, o_lat.data(), 1, dl, out + (t * H + h) * dv, dv);
        }
        return;
      }
      // Decompressed: the head's keys (nope and rope parts) transposed into kt [dq, ld] (ld: n_ctx
      // rounded up to 16, the padding zero), then blocks of 8 queries: their scores against every
      // key any of them sees in one register-blocked product, the softmax per query, and the
      // weighted values in another.
      const int64_t ld = (n_ctx + 15) / 16 * 16;
      const ScratchFloats k_nope(static_cast<size_t>(n_ctx * dn)), vals(static_cast<size_t>(n_ctx * dv));
      const ScratchFloats kt(static_cast<size_t>(dq * ld)), block(static_cast<size_t>(8 * ld));
      up.keys(h, latent, n_ctx, k_nope.data(), lat_q8);
      up.values(h, latent, n_ctx, dl, vals.data(), dv, lat_q8);
      for (int64_t i = 0; i < dq; ++i) {
        float* row = kt.data() + i * ld;
        for (int64_t k = 0; k < n_ctx; ++k) row[k] = i < dn ? k_nope[k * dn + i] : k_rope[k * dr + (i - dn)];
        std::fill(row + n_ctx, row + ld, 0.0f);
      }
      for (int64_t t0 = 0; t0 < n; t0 += 8) {
        const int nb = static_cast<int>(std::min<int64_t>(8, n - t0));
        const int64_t seen = std::min(n_ctx, n_past + t0 + nb);  // keys any query of the block may see
        const float* qs[8];
        for (int i = 0; i < nb; ++i) qs[i] = q + ((t0 + i) * H + h) * dq;
        attn_scores_f32(qs, nb, kt.data(), ld, dq, (seen + 15) / 16 * 16, block.data(), ld);
        for (int i = 0; i < nb; ++i) {
          float* sc = block.data() + i * ld;
          for (int64_t k = 0; k < seen; ++k) sc[k] = visible(t0 + i, k) ? sc[k] * s.scale : kNegInf;
          softmax(sc, seen);
        }
        attn_pv_f32(block.data(), ld, nb, vals.data(), dv, seen, dv, out + (t0 * H + h) * dv, H * dv);
      }
    });
  });
}

void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh, int64_t hd,
                int64_t top_k, uint8_t* allowed) {
  const int64_t n_ctx = n_past + n;
  std::fill(allowed, allowed + n * n_ctx, uint8_t{0});
  const ScratchLease<std::vector<float>> score_lease;
  const ScratchLease<std::vector<int64_t>> order_lease;
  std::vector<float>& score = *score_lease;
  std::vector<int64_t>& order = *order_lease;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t visible = n_past + t + 1;
    const float* qt = q + t * nh * hd;
    const float* wt = w + t * nh;
    reserve_geometric(score, static_cast<size_t>(visible));
    reserve_geometric(order, static_cast<size_t>(visible));
    score.assign(static_cast<size_t>(visible), 0.0f);
    for (int64_t k = 0; k < visible; ++k) {
      const float* ks = keys + k * hd;
      float acc = 0;
      for (int64_t h = 0; h < nh; ++h) acc += wt[h] * std::max(dot_f32(qt + h * hd, ks, hd), 0.0f);
      score[static_cast<size_t>(k)] = acc;
    }
    order.resize(static_cast<size_t>(visible));
    std::iota(order.begin(), order.end(), 0);
    const int64_t keep = std::min(top_k, visible);
    // The keep highest scores, a tie going to the earlier key (a strict order: the same set as a
    // stable sort's first keep; no temporary buffer).
    if (keep <= 0) continue;
    std::nth_element(order.begin(), order.begin() + (keep - 1), order.end(),
                     [&](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
    for (int64_t i = 0; i < keep; ++i) allowed[static_cast<size_t>(t * n_ctx + order[i])] = 1;
  }
}

}  // namespace strata
