#include "cpu-kernels/mla_attention.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/indexer.h"
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

constexpr float kNegInf = -std::numeric_limits<float>::infinity();


// The absorbed form: every head's queries taken into the latent space (q_lat = K_hᵀ q_nope),
// then all query rows (token t, head h: row t·H + h) scored against the cache together, in
// groups of kRows, so a latent row is read once per group rather than once per head. The
// context is split into parts of kPart keys (split-K: each part's running max, sum and weighted
// latent sum per row, merged at the end); a part's keys go by in chunks of kChunk (in the
// cache's L2-sized pieces), each chunk scored and weighted for every row group of the task
// before the next, with an online softmax. The weighted latent sums are taken out of the latent
// space per head (out_h = V_h o_lat). A row's result depends only on the shapes (the parts),
// not on the thread count or on which rows share a task.
constexpr int64_t kChunk = 128, kPart = 512;
constexpr int kRows = 8;
constexpr int64_t kQueries = 64;  // the decompressed form's block of queries (one head's)

// nk cache rows of width d from c as f32: the rows themselves (an f32 cache), or widened into
// buf (a bf16 cache: half the bytes to stream, exact in f32).
const float* cache_rows(const float* c, int64_t, int64_t, float*) { return c; }
void widen_rows(const uint16_t* c, int64_t k0, int64_t nk, int64_t d, float* buf) {
  const WeightView v{WeightType::BF16, reinterpret_cast<const uint8_t*>(c), k0 + nk, d};
  for (int64_t k = 0; k < nk; ++k) dequant_row(v, k0 + k, buf + k * d);  // the level's vector widening
}
const float* cache_rows(const uint16_t* c, int64_t nk, int64_t d, float* buf) {
  widen_rows(c, 0, nk, d, buf);
  return buf;
}

// One chunk of a row's online softmax. row[0, nk) holds the row's raw scores against the chunk's
// keys, of which [0, vis) come before the row's token (and of those, mask[k] == 0 hides key k;
// mask may be null). On return row[k] = e^(scale · score − m) for the running max m (0 for a key
// not seen), ml[0] = m, ml[1] the running sum of the weights, and o[0, width) (the running
// weighted sum) rescaled to the new max. A chunk that shows the row no key changes nothing.
void online_softmax_step(float* row, int64_t nk, int64_t vis, float scale, const uint8_t* mask, float* ml, float* o,
                         int64_t width) {
  for (int64_t k = 0; k < vis; ++k) row[k] *= scale;
  std::fill(row + vis, row + nk, kNegInf);
  if (mask)
    for (int64_t k = 0; k < vis; ++k)
      if (!mask[k]) row[k] = kNegInf;
  const float cm = max_f32(row, vis);
  if (cm == kNegInf) {
    std::fill(row, row + nk, 0.0f);
    return;
  }
  const float m = ml[0], mn = std::max(m, cm), alpha = m == kNegInf ? 0.0f : std::exp(m - mn);
  for (int64_t k = 0; k < nk; ++k) row[k] -= mn;
  exp_f32(row, nk);
  ml[0] = mn;
  ml[1] = alpha * ml[1] + sum_f32(row, nk);
  if (alpha != 1.0f)
    for (int64_t j = 0; j < width; ++j) o[j] *= alpha;
}

// kt[i · ld + k] = key k's element i for i < dn + dr, k < ld: the nope part from k_nope [n, dn],
// the rope part from k_rope [n, dr], zero for k >= n. Sixteen keys at a time, so that the rows
// read stay in L1 while their columns are written.
void transpose_keys(const float* k_nope, int64_t dn, const float* k_rope, int64_t dr, int64_t n, int64_t ld,
                    float* kt) {
  for (int64_t k0 = 0; k0 < ld; k0 += 16) {
    const int64_t nk = std::min<int64_t>(16, n - k0);
    for (int64_t i = 0; i < dn + dr; ++i) {
      const float* src = i < dn ? k_nope + k0 * dn + i : k_rope + k0 * dr + (i - dn);
      const int64_t stride = i < dn ? dn : dr;
      float* dst = kt + i * ld + k0;
      for (int64_t k = 0; k < nk; ++k) dst[k] = src[k * stride];
      std::fill(dst + nk, dst + 16, 0.0f);
    }
  }
}

// transpose_keys over bf16 rows, in pairs of elements (attn_scores_bf16's layout):
// kt[(i/2 · ld + k) · 2 + i % 2] = key k's element i, from the nope rows k16 [n, dn] then the rope
// rows kr16 [n, dr] (dn, dr even), zero for k >= n.
void transpose_keys_bf16(const uint16_t* k16, int64_t dn, const uint16_t* kr16, int64_t dr, int64_t n, int64_t ld,
                         uint16_t* kt) {
  for (int64_t k0 = 0; k0 < ld; k0 += 16) {
    const int64_t nk = std::min<int64_t>(16, n - k0);  // >= 1: ld is n rounded up to 16
    for (int64_t i = 0; i < dn + dr; i += 2) {
      const uint16_t* src = i < dn ? k16 + k0 * dn + i : kr16 + k0 * dr + (i - dn);
      const int64_t stride = i < dn ? dn : dr;
      uint16_t* dst = kt + (i / 2 * ld + k0) * 2;
      for (int64_t k = 0; k < nk; ++k) dst[2 * k] = src[k * stride], dst[2 * k + 1] = src[k * stride + 1];
      std::fill(dst + 2 * nk, dst + 32, uint16_t{0});
    }
  }
}

template <class T>
void mla_absorbed(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const T* latent,
                  const T* k_rope, const uint8_t* allowed, float* out) {
  const int64_t H = s.heads, dn = s.nope, dr = s.rope, dv = s.v, dl = s.kv_lora, dq = dn + dr, n_ctx = n_past + n;
  // Several tokens under a mask (V3.2's prefill deep in a context, which the model sends here
  // when the mask is sparse): each token as one alone (below), tokens in parallel, so that each
  // scores only the keys it sees and gives what its decode gives, bit for bit.
  if (allowed && n > 1) {
    run_in_compute_arena([&] {
      tbb::parallel_for(int64_t{0}, n, [&](int64_t t) {
        mla_absorbed(s, up, q + t * H * dq, 1, n_past + t, latent, k_rope, allowed + t * n_ctx, out + t * H * dv);
      });
    });
    return;
  }
  // One token under a mask (V3.2's decode: the indexer's top-k of a long context): only the
  // keys it sees are scored, gathered a chunk at a time, in the order of the cache.
  const ScratchLease<std::vector<int64_t>> sel_lease;
  std::vector<int64_t>& sel = *sel_lease;
  const bool gathered = allowed != nullptr;  // one token: several under a mask returned above
  if (gathered) {
    sel.clear();
    reserve_geometric(sel, static_cast<size_t>(n_ctx));
    for (int64_t k = 0; k < n_ctx; ++k)
      if (allowed[static_cast<size_t>(k)]) sel.push_back(k);
  }
  const int64_t n_keys = gathered ? static_cast<int64_t>(sel.size()) : n_ctx;
  const int64_t R = n * H, parts = std::max<int64_t>(1, (n_keys + kPart - 1) / kPart), groups = (R + kRows - 1) / kRows;
  // A bf16 cache on a CPU with bf16 dot products: the rows' queries rounded to bf16 once, the
  // scores and the weighted sum taken from the cache's bf16 rows as they lie, the weights rounded
  // to bf16 (as the published inference code multiplies its bf16 queries, weights and cache),
  // with f32 sums; no row widened.
  const bool bf16_dot = std::is_same_v<T, uint16_t> && has_attn_scores_rows_bf16(dl, dr) && has_attn_pv_bf16(dl);
  const ScratchLease<std::vector<uint16_t>> q16_lease;
  std::vector<uint16_t>& q16 = *q16_lease;  // [R, dl + dr]: a row's q_lat then its q_rope, in bf16
  if (bf16_dot) q16.resize(static_cast<size_t>(R * (dl + dr)));
  const ScratchLease<std::vector<float>> q_lat_lease, o_part_lease, ml_part_lease;
  std::vector<float>& q_lat = *q_lat_lease;      // [R, dl]
  std::vector<float>& o_part = *o_part_lease;    // [parts, R, dl]: each part's weighted latent sum
  std::vector<float>& ml_part = *ml_part_lease;  // [parts, R, 2]: its running max and sum
  for (auto [v, size] : {std::pair{&q_lat, R * dl}, {&o_part, parts * R * dl}, {&ml_part, parts * R * 2}}) {
    reserve_geometric(*v, static_cast<size_t>(size));
    v->resize(static_cast<size_t>(size));
  }
  run_in_compute_arena([&] {
    tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
      up.absorb_q(h, q + h * dq, n, H * dq, q_lat.data() + h * dl, H * dl);
      if (bf16_dot)
        for (int64_t r = h; r < R; r += H) {
          to_bf16_row(q_lat.data() + r * dl, q16.data() + r * (dl + dr), dl);
          to_bf16_row(q + r * dq + dn, q16.data() + r * (dl + dr) + dl, dr);
        }
    });
    // Rows split across tasks only as far as the parts alone leave the arena's threads idle.
    const int64_t threads = std::max(1, tbb::this_task_arena::max_concurrency());
    const int64_t splits = std::clamp<int64_t>((2 * threads + parts - 1) / parts, 1, groups);
    const int64_t per_split = (groups + splits - 1) / splits * kRows;
    tbb::parallel_for(int64_t{0}, parts * splits, [&](int64_t task) {
      const int64_t p = task / splits, ra = task % splits * per_split, rb = std::min(R, ra + per_split);
      if (ra >= rb) return;
      float* ml = ml_part.data() + p * R * 2;  // row r: ml[2r] the running max, ml[2r + 1] the sum
      float* o = o_part.data() + p * R * dl;
      for (int64_t r = ra; r < rb; ++r) ml[2 * r] = kNegInf, ml[2 * r + 1] = 0;
      std::fill(o + ra * dl, o + rb * dl, 0.0f);
      // Keys of this part any of the rows may see (causal: token t sees keys <= n_past + t; with
      // the keys gathered, positions in `sel`, all seen).
      const int64_t k_begin = p * kPart,
                    k_end = gathered ? std::min(n_keys, k_begin + kPart)
                                     : std::min({n_ctx, k_begin + kPart, n_past + (rb - 1) / H + 1});
      const ScratchFloats sc(static_cast<size_t>(kRows * kChunk)), oc(static_cast<size_t>(kRows * dl));
      const ScratchFloats wide(std::is_same_v<T, float> ? 0 : static_cast<size_t>(kChunk * (dl + dr)));
      const ScratchLease<std::vector<T>> picked_lease;  // the chunk's gathered rows [nk, dl + dr]: latent, then rope
      std::vector<T>& picked = *picked_lease;
      if (gathered) picked.resize(static_cast<size_t>(kChunk * (dl + dr)));
      for (int64_t k0 = k_begin; k0 < k_end; k0 += kChunk) {
        const int64_t nk = std::min(kChunk, k_end - k0);
        // The chunk's rows: in place, or gathered from the positions in `sel`.
        const T* lat_rows = latent + k0 * dl;
        const T* kr_rows = k_rope + k0 * dr;
        if (gathered) {
          T* pl = picked.data();
          T* pr = pl + kChunk * dl;
          for (int64_t k = 0; k < nk; ++k) {
            const int64_t key = sel[static_cast<size_t>(k0 + k)];
            std::copy_n(latent + key * dl, dl, pl + k * dl);
            std::copy_n(k_rope + key * dr, dr, pr + k * dr);
          }
          lat_rows = pl;
          kr_rows = pr;
        }
        const float* lat = bf16_dot ? nullptr : cache_rows(lat_rows, nk, dl, wide.data());
        // The rope rows' part of the widening buffer (none with an f32 cache: no pointer formed).
        float* const wide_kr = wide.vec().empty() ? nullptr : wide.data() + kChunk * dl;
        const float* kr = bf16_dot ? nullptr : cache_rows(kr_rows, nk, dr, wide_kr);
        for (int64_t r0 = ra; r0 < rb; r0 += kRows) {
          const int nb = static_cast<int>(std::min<int64_t>(kRows, rb - r0));
          const float* ql[kRows];
          const float* qr[kRows];
          for (int i = 0; i < nb; ++i) {
            ql[i] = q_lat.data() + (r0 + i) * dl;
            qr[i] = q + (r0 + i) * dq + dn;  // row t·H + h of q [n, H, dq]
          }
          if constexpr (std::is_same_v<T, uint16_t>) {
            if (bf16_dot) {
              const uint16_t* ql16[kRows];
              const uint16_t* qr16[kRows];
              for (int i = 0; i < nb; ++i) {
                ql16[i] = q16.data() + (r0 + i) * (dl + dr);
                qr16[i] = ql16[i] + dl;
              }
              attn_scores_rows_bf16(ql16, qr16, nb, lat_rows, dl, dl, kr_rows, dr, dr, nk, sc.data(), kChunk);
            }
          }
          if (!bf16_dot) attn_scores_rows_f32(ql, qr, nb, lat, dl, dl, kr, dr, dr, nk, sc.data(), kChunk);
          for (int i = 0; i < nb; ++i) {
            const int64_t r = r0 + i, t = r / H;
            // Keys [0, vis) of the chunk come before the row's token (gathered: every key was
            // picked as seen).
            const int64_t vis = gathered ? nk : std::max<int64_t>(0, std::min(nk, n_past + t - k0 + 1));
            online_softmax_step(sc.data() + i * kChunk, nk, vis, s.scale, nullptr, ml + 2 * r, o + r * dl, dl);
          }
          bool pv_done = false;
          if constexpr (std::is_same_v<T, uint16_t>)
            pv_done = bf16_dot && attn_pv_bf16(sc.data(), kChunk, nb, lat_rows, dl, nk, dl, oc.data(), dl);
          if (!pv_done) {
            if (!lat) lat = cache_rows(lat_rows, nk, dl, wide.data());
            attn_pv_f32(sc.data(), kChunk, nb, lat, dl, nk, dl, oc.data(), dl);
          }
          for (int64_t j = 0; j < nb * dl; ++j) o[r0 * dl + j] += oc[j];
        }
      }
    });
    tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
      const ScratchFloats o_lat(static_cast<size_t>(n * dl));
      for (int64_t t = 0; t < n; ++t) {
        const int64_t r = t * H + h;
        float* ot = o_lat.data() + t * dl;
        std::fill(ot, ot + dl, 0.0f);
        float mx = kNegInf;
        for (int64_t p = 0; p < parts; ++p) mx = std::max(mx, ml_part[static_cast<size_t>((p * R + r) * 2)]);
        if (mx == kNegInf) continue;  // no visible key at all (a mask that hides every key): zeros
        float total = 0;
        for (int64_t p = 0; p < parts; ++p) {
          const float mp = ml_part[static_cast<size_t>((p * R + r) * 2)];
          if (mp == kNegInf) continue;
          const float w = std::exp(mp - mx);
          total += w * ml_part[static_cast<size_t>((p * R + r) * 2 + 1)];
          axpy_f32(w, o_part.data() + (p * R + r) * dl, ot, dl);
        }
        const float inv = 1.0f / total;
        for (int64_t j = 0; j < dl; ++j) ot[j] *= inv;
      }
      up.values(h, o_lat.data(), n, dl, out + h * dv, H * dv);
    });
  });
}

// The decompressed form of one head (prefill): the queries in blocks of kQueries, each block
// against the keys it sees in chunks of kChunk (a chunk's keys and values stay in cache for the
// block) with an online softmax. scores(t0, nb, k0, nk, sc) writes the raw scores of tokens
// [t0, t0 + nb) (nb <= kRows) against keys [k0, k0 + nk) into sc (rows kChunk apart), pv(sc, nb,
// k0, nk, oc) those keys' values weighted by sc into oc (rows dv apart). The chunks start at
// multiples of kChunk from key 0, so a token's result does not depend on how the tokens were
// split into steps.
template <class Scores, class Pv>
void decompressed_head(const MlaShape& s, int64_t n, int64_t n_past, int64_t h, const uint8_t* allowed,
                       const Scores& scores, const Pv& pv, float* out) {
  const int64_t H = s.heads, dv = s.v, n_ctx = n_past + n;
  const ScratchFloats sc(static_cast<size_t>(kRows * kChunk)), oc(static_cast<size_t>(kRows * dv));
  const ScratchFloats acc(static_cast<size_t>(kQueries * dv)), ml(static_cast<size_t>(2 * kQueries));
  for (int64_t q0 = 0; q0 < n; q0 += kQueries) {
    const int64_t nq = std::min(kQueries, n - q0), seen = std::min(n_ctx, n_past + q0 + nq);
    for (int64_t j = 0; j < nq; ++j) ml[static_cast<size_t>(2 * j)] = kNegInf, ml[static_cast<size_t>(2 * j + 1)] = 0;
    std::fill(acc.data(), acc.data() + nq * dv, 0.0f);
    for (int64_t k0 = 0; k0 < seen; k0 += kChunk) {
      const int64_t nk = std::min(kChunk, seen - k0);
      for (int64_t b0 = 0; b0 < nq; b0 += kRows) {
        const int nb = static_cast<int>(std::min<int64_t>(kRows, nq - b0));
        if (k0 > n_past + q0 + b0 + nb - 1) continue;  // no token of the block sees the chunk
        scores(q0 + b0, nb, k0, nk, sc.data());
        for (int i = 0; i < nb; ++i) {
          const int64_t j = b0 + i, t = q0 + j;
          const int64_t vis = std::max<int64_t>(0, std::min(nk, n_past + t - k0 + 1));
          online_softmax_step(sc.data() + i * kChunk, nk, vis, s.scale, allowed ? allowed + t * n_ctx + k0 : nullptr,
                              &ml[static_cast<size_t>(2 * j)], acc.data() + j * dv, dv);
        }
        pv(sc.data(), nb, k0, nk, oc.data());
        for (int64_t x = 0; x < nb * dv; ++x) acc[static_cast<size_t>(b0 * dv + x)] += oc[static_cast<size_t>(x)];
      }
    }
    for (int64_t j = 0; j < nq; ++j) {
      const float l = ml[static_cast<size_t>(2 * j + 1)], inv = l > 0 ? 1.0f / l : 0.0f;  // no key seen: zeros
      float* o = out + ((q0 + j) * H + h) * dv;
      for (int64_t x = 0; x < dv; ++x) o[x] = acc[static_cast<size_t>(j * dv + x)] * inv;
    }
  }
}

// The decompressed form over the latent rows (f32) and the rope keys: in f32 (k_rope), or with
// bf16 products (k_rope16, the bf16 cache's rows: the caller has checked that the level has
// them for these widths): each head's keys and values taken out of the latent, then rounded to
// bf16 as are the queries and the softmax weights, the products in bf16 pairs with f32 sums (the
// published inference code's bf16 arithmetic).
void mla_decompressed(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past,
                      const float* latent, const float* k_rope, const uint16_t* k_rope16, const uint8_t* allowed,
                      float* out) {
  const int64_t H = s.heads, dn = s.nope, dr = s.rope, dv = s.v, dl = s.kv_lora, dq = dn + dr, n_ctx = n_past + n;
  const bool bf16 = k_rope16 != nullptr;
  const ScratchLease<std::vector<ActQ8>> latent_q8_lease;
  const ScratchLease<std::vector<const ActQ8*>> latent_ptrs_lease;
  const ScratchLease<std::vector<uint16_t>> q16_lease;
  std::vector<uint16_t>& q16 = *q16_lease;  // [n, H, dq]: the queries in bf16 (bf16 products)
  if (bf16) {
    q16.resize(static_cast<size_t>(n * H * dq));
    to_bf16_row(q, q16.data(), n * H * dq);
  }
  // Heads are independent: one parallel job over them, each with its own (reused) scratch.
  run_in_compute_arena([&] {
    const ActQ8* const* lat_q8 =
        quantize_latent(up, latent, n_ctx, *latent_q8_lease, *latent_ptrs_lease) ? latent_ptrs_lease->data()
                                                                                            : nullptr;
    tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
      const ScratchFloats k_nope(static_cast<size_t>(n_ctx * dn)), vals(static_cast<size_t>(n_ctx * dv));
      up.keys(h, latent, n_ctx, k_nope.data(), lat_q8);
      up.values(h, latent, n_ctx, dl, vals.data(), dv, lat_q8);
      const int64_t ld = (n_ctx + 15) / 16 * 16;
      if (bf16) {  // the keys rounded and transposed in pairs, the values rounded (read as rows)
        const ScratchLease<std::vector<uint16_t>> k16_lease, kt16_lease, v16_lease;
        std::vector<uint16_t>& k16 = *k16_lease;
        std::vector<uint16_t>& kt16 = *kt16_lease;
        std::vector<uint16_t>& v16 = *v16_lease;
        k16.resize(static_cast<size_t>(n_ctx * dn));
        kt16.resize(static_cast<size_t>(dq * ld));
        v16.resize(static_cast<size_t>(n_ctx * dv));
        to_bf16_row(k_nope.data(), k16.data(), n_ctx * dn);
        to_bf16_row(vals.data(), v16.data(), n_ctx * dv);
        transpose_keys_bf16(k16.data(), dn, k_rope16, dr, n_ctx, ld, kt16.data());
        const auto scores = [&](int64_t t0, int nb, int64_t k0, int64_t nk, float* sc) {
          const uint16_t* qs[kRows];
          for (int i = 0; i < nb; ++i) qs[i] = q16.data() + ((t0 + i) * H + h) * dq;
          attn_scores_bf16(qs, nb, kt16.data() + k0 * 2, ld, dq, (nk + 15) / 16 * 16, sc, kChunk);
        };
        const auto pv = [&](const float* sc, int nb, int64_t k0, int64_t nk, float* oc) {
          attn_pv_bf16(sc, kChunk, nb, v16.data() + k0 * dv, dv, nk, dv, oc, dv);
        };
        return decompressed_head(s, n, n_past, h, allowed, scores, pv, out);
      }
      // f32: the keys (nope and rope parts) transposed into kt [dq, ld] (ld: n_ctx rounded up to
      // 16, the padding zero) for the register-blocked products.
      const ScratchFloats kt(static_cast<size_t>(dq * ld));
      transpose_keys(k_nope.data(), dn, k_rope, dr, n_ctx, ld, kt.data());
      const auto scores = [&](int64_t t0, int nb, int64_t k0, int64_t nk, float* sc) {
        const float* qs[kRows];
        for (int i = 0; i < nb; ++i) qs[i] = q + ((t0 + i) * H + h) * dq;
        attn_scores_f32(qs, nb, kt.data() + k0, ld, dq, (nk + 15) / 16 * 16, sc, kChunk);
      };
      const auto pv = [&](const float* sc, int nb, int64_t k0, int64_t nk, float* oc) {
        attn_pv_f32(sc, kChunk, nb, vals.data() + k0 * dv, dv, nk, dv, oc, dv);
      };
      decompressed_head(s, n, n_past, h, allowed, scores, pv, out);
    });
  });
}

}  // namespace

void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const float* latent,
                   const float* k_rope, const uint8_t* allowed, bool absorbed, float* out) {
  if (absorbed) return mla_absorbed(s, up, q, n, n_past, latent, k_rope, allowed, out);
  mla_decompressed(s, up, q, n, n_past, latent, k_rope, nullptr, allowed, out);
}

void mla_attention(const MlaShape& s, const MlaUp& up, const float* q, int64_t n, int64_t n_past, const uint16_t* latent,
                   const uint16_t* k_rope, const uint8_t* allowed, bool absorbed, float* out) {
  if (absorbed) return mla_absorbed(s, up, q, n, n_past, latent, k_rope, allowed, out);
  // Decompressed (prefill): the latent rows widened once for the products that take them out;
  // the rope keys read as they lie where the level has bf16 products for these widths, else
  // widened too and the f32 form taken.
  const int64_t n_ctx = n_past + n;
  const bool bf16 = s.nope % 2 == 0 && has_attn_scores_bf16(s.nope + s.rope) && has_attn_pv_bf16(s.v);
  const ScratchFloats lat(static_cast<size_t>(n_ctx * s.kv_lora)),
      kr(bf16 ? 0 : static_cast<size_t>(n_ctx * s.rope));
  const auto widen = [&](const uint16_t* c, int64_t d, float* dst) {
    run_in_compute_arena([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, n_ctx, 64), [&](const tbb::blocked_range<int64_t>& r) {
        widen_rows(c, r.begin(), r.end() - r.begin(), d, dst + r.begin() * d);
      });
    });
  };
  widen(latent, s.kv_lora, lat.data());
  if (bf16) return mla_decompressed(s, up, q, n, n_past, lat.data(), nullptr, k_rope, allowed, out);
  widen(k_rope, s.rope, kr.data());
  mla_decompressed(s, up, q, n, n_past, lat.data(), kr.data(), nullptr, allowed, out);
}

namespace {
template <class K>
void topk_keys(const float* q, const float* w, const K* keys, int64_t n, int64_t n_past, int64_t nh,
               int64_t hd, int64_t top_k, uint8_t* allowed) {
  const int64_t n_ctx = n_past + n;
  std::fill(allowed, allowed + n * n_ctx, uint8_t{0});
  // Token t's keys [0, n_past + t] scored, then the top_k of them marked (a tie to the earlier
  // key: a strict order, the same set as a stable sort's first top_k). Tokens in parallel; one
  // token alone (decode) scores its keys in parallel chunks.
  auto choose = [&](int64_t t, std::vector<float>& score, std::vector<int64_t>& order, bool split_keys) {
    const int64_t visible = n_past + t + 1;
    reserve_geometric(score, static_cast<size_t>(visible));
    score.resize(static_cast<size_t>(visible));
    const float* qt = q + t * nh * hd;
    const float* wt = w + t * nh;
    index_scores(qt, wt, keys, nh, hd, visible, split_keys, score.data());
    const int64_t keep = std::min(top_k, visible);
    if (keep <= 0) return;
    reserve_geometric(order, static_cast<size_t>(visible));
    order.resize(static_cast<size_t>(visible));
    std::iota(order.begin(), order.end(), 0);
    std::nth_element(order.begin(), order.begin() + (keep - 1), order.end(),
                     [&](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
    for (int64_t i = 0; i < keep; ++i) allowed[static_cast<size_t>(t * n_ctx + order[i])] = 1;
  };
  run_in_compute_arena([&] {
    if (n == 1) {
      const ScratchLease<std::vector<float>> score;
      const ScratchLease<std::vector<int64_t>> order;
      choose(0, *score, *order, true);
      return;
    }
    tbb::parallel_for(int64_t{0}, n, [&](int64_t t) {
      const ScratchLease<std::vector<float>> score;
      const ScratchLease<std::vector<int64_t>> order;
      choose(t, *score, *order, false);
    });
  });
}
}  // namespace

void index_topk(const float* q, const float* w, const float* keys, int64_t n, int64_t n_past, int64_t nh,
                int64_t hd, int64_t top_k, uint8_t* allowed) {
  topk_keys(q, w, keys, n, n_past, nh, hd, top_k, allowed);
}

void index_topk(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t n_past, int64_t nh,
                int64_t hd, int64_t top_k, uint8_t* allowed) {
  topk_keys(q, w, keys, n, n_past, nh, hd, top_k, allowed);
}

}  // namespace strata
