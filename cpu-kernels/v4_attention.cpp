#include "cpu-kernels/v4_attention.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/indexer.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"

namespace strata {

namespace {

// A key row into f32: copied, or widened from bf16.
void gather_key(const float* k, int64_t D, float* out) { std::copy_n(k, D, out); }
void gather_key(const uint16_t* k, int64_t D, float* out) {
  dequant_row(WeightView{WeightType::BF16, reinterpret_cast<const uint8_t*>(k), 1, D}, 0, out);
}

template <class K>
void sink_attention_t(const float* q, const K* const* keys, int64_t nk, const float* sink, int64_t H,
                      int64_t D, float scale, float* out) {
  // Split-K: the keys in parts of kPart, computed in parallel; a part's keys gathered once into
  // rows and scored for all heads, 8 heads at a time (attn_scores_rows_f32: each key read once
  // for the 8), their weights applied the same way (attn_pv_f32); each part's max, sum and
  // weighted sum per head merged with the sink at the end. The parts depend only on nk, so the
  // result does not depend on the thread count.
  constexpr int64_t kPart = 128;
  constexpr int kHeads = 8;
  const int64_t parts = (nk + kPart - 1) / kPart;
  const ScratchLease<std::vector<float>> o_lease, ml_lease;
  std::vector<float>& o_part = *o_lease;    // [parts, H, D]: each part's weighted sum per head
  std::vector<float>& ml_part = *ml_lease;  // [parts, H, 2]: its max and sum of weights
  reserve_geometric(o_part, static_cast<size_t>(parts * H * D));
  reserve_geometric(ml_part, static_cast<size_t>(parts * H * 2));
  o_part.resize(static_cast<size_t>(parts * H * D));
  ml_part.resize(static_cast<size_t>(parts * H * 2));
  run_in_compute_arena([&] {
    tbb::parallel_for(int64_t{0}, parts, [&](int64_t p) {
      const int64_t k0 = p * kPart, np = std::min(kPart, nk - k0);
      const ScratchFloats kc(static_cast<size_t>(np * D)), sc(static_cast<size_t>(kHeads * kPart));
      for (int64_t k = 0; k < np; ++k) gather_key(keys[k0 + k], D, kc.data() + k * D);
      for (int64_t h0 = 0; h0 < H; h0 += kHeads) {
        const int nb = static_cast<int>(std::min<int64_t>(kHeads, H - h0));
        const float* qs[kHeads];
        for (int i = 0; i < nb; ++i) qs[i] = q + (h0 + i) * D;
        attn_scores_rows_f32(qs, qs, nb, kc.data(), D, D, kc.data(), 0, 0, np, sc.data(), kPart);
        for (int i = 0; i < nb; ++i) {
          float* row = sc.data() + i * kPart;
          for (int64_t k = 0; k < np; ++k) row[k] *= scale;
          const float m = max_f32(row, np);
          for (int64_t k = 0; k < np; ++k) row[k] -= m;
          exp_f32(row, np);
          float* ml = ml_part.data() + (p * H + h0 + i) * 2;
          ml[0] = m, ml[1] = sum_f32(row, np);
        }
        attn_pv_f32(sc.data(), kPart, nb, kc.data(), D, np, D, o_part.data() + (p * H + h0) * D, D);
      }
    });
    tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
      float m = sink[h];
      for (int64_t p = 0; p < parts; ++p) m = std::max(m, ml_part[static_cast<size_t>((p * H + h) * 2)]);
      double den = std::exp(static_cast<double>(sink[h]) - m);
      for (int64_t p = 0; p < parts; ++p) {
        const float* ml = ml_part.data() + (p * H + h) * 2;
        den += std::exp(static_cast<double>(ml[0]) - m) * ml[1];
      }
      float* oh = out + h * D;
      std::fill(oh, oh + D, 0.0f);
      for (int64_t p = 0; p < parts; ++p) {
        const double mp = ml_part[static_cast<size_t>((p * H + h) * 2)];
        axpy_f32(static_cast<float>(std::exp(mp - m) / den), o_part.data() + (p * H + h) * D, oh, D);
      }
    });
  });
}

}  // namespace

void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H,
                    int64_t D, float scale, float* out) {
  sink_attention_t(q, keys, nk, sink, H, D, scale, out);
}

void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                    int64_t D, float scale, float* out) {
  sink_attention_t(q, keys, nk, sink, H, D, scale, out);
}

namespace {
template <class K>
void pick_rows(const float* q, const float* w, const K* keys, int64_t n, int64_t first_pos, int64_t ratio,
               int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count) {
  // Token t's rows scored (the heads' weights scaled by wscale once), then the count highest,
  // best first, the earlier row on ties (a stable sort's first count, in its order). Tokens in
  // parallel; one token alone (decode) scores its rows in parallel chunks.
  auto pick = [&](int64_t t, bool split_keys) {
    const ScratchLease<std::vector<float>> score_lease, w_lease;
    const ScratchLease<std::vector<int64_t>> order_lease;
    std::vector<float>& score = *score_lease;
    std::vector<float>& wt = *w_lease;
    std::vector<int64_t>& order = *order_lease;
    const int64_t rows = (first_pos + t + 1) / ratio;
    wt.resize(static_cast<size_t>(nh));
    for (int64_t h = 0; h < nh; ++h) wt[static_cast<size_t>(h)] = w[t * nh + h] * wscale;
    reserve_geometric(score, static_cast<size_t>(rows));
    reserve_geometric(order, static_cast<size_t>(rows));
    score.resize(static_cast<size_t>(rows));
    index_scores(q + t * nh * hd, wt.data(), keys, nh, hd, rows, split_keys, score.data());
    order.resize(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    count[t] = std::min(rows, top_k);
    std::partial_sort(order.begin(), order.begin() + count[t], order.end(),
                      [&](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); });
    std::copy_n(order.begin(), count[t], picked + t * top_k);
  };
  if (n == 1) return pick(0, true);
  run_in_compute_arena([&] { tbb::parallel_for(int64_t{0}, n, [&](int64_t t) { pick(t, false); }); });
}
}  // namespace

void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos,
                int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                int64_t* count) {
  pick_rows(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
}

void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                int64_t* count) {
  pick_rows(q, w, keys, n, first_pos, ratio, nh, hd, wscale, top_k, picked, count);
}

void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                   int64_t width, int64_t own, int64_t D, float* out) {
  for (int64_t d = 0; d < D; ++d) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < ratio; ++i) {
      m = std::max(m, score[i * width + own + d]);
      if (prev_score) m = std::max(m, prev_score[i * width + d]);
    }
    double num = 0, den = 0;
    for (int64_t i = 0; i < ratio; ++i) {
      const double e = std::exp(static_cast<double>(score[i * width + own + d]) - m);
      den += e;
      num += e * kv[i * width + own + d];
      if (prev_score) {
        const double ep = std::exp(static_cast<double>(prev_score[i * width + d]) - m);
        den += ep;
        num += ep * prev_kv[i * width + d];
      }
    }
    out[d] = static_cast<float>(num / den);
  }
}

}  // namespace strata
