#include "cpu-kernels/indexer.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <type_traits>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/scratch.h"

namespace strata {
namespace {

constexpr int64_t kKeys = 128;  // keys scored together (their dots: 8 heads × kKeys floats)

// A chunk of keys [c0, c0 + nk) as f32 rows: f32 keys as they lie; bf16 ones widened into `wide`
// (kKeys · hd floats).
const float* chunk_keys(const float* keys, int64_t hd, int64_t c0, int64_t, float*) { return keys + c0 * hd; }
const float* chunk_keys(const uint16_t* keys, int64_t hd, int64_t c0, int64_t nk, float* wide) {
  const WeightView rows{WeightType::BF16, reinterpret_cast<const uint8_t*>(keys + c0 * hd), nk, hd};
  for (int64_t k = 0; k < nk; ++k) dequant_row(rows, k, wide + k * hd);
  return wide;
}

// index_scores over keys [k0, k1) into score[0, k1 - k0), in chunks of kKeys.
template <class K>
void scores_range(const float* q, const float* w, const K* keys, int64_t nh, int64_t hd, int64_t k0,
                  int64_t k1, float* score) {
  const ScratchFloats dots(static_cast<size_t>(8 * kKeys));
  const ScratchFloats wide(std::is_same_v<K, float> ? 0 : static_cast<size_t>(kKeys * hd));
  for (int64_t c0 = k0; c0 < k1; c0 += kKeys) {
    const int64_t nk = std::min(kKeys, k1 - c0);
    const float* ck = chunk_keys(keys, hd, c0, nk, wide.data());
    float* sc = score + (c0 - k0);
    std::fill(sc, sc + nk, 0.0f);
    for (int64_t h0 = 0; h0 < nh; h0 += 8) {
      const int nb = static_cast<int>(std::min<int64_t>(8, nh - h0));
      const float* qs[8];
      for (int i = 0; i < nb; ++i) qs[i] = q + (h0 + i) * hd;
      attn_scores_rows_f32(qs, qs, nb, ck, hd, hd, ck, hd, 0, nk, dots.data(), kKeys);
      for (int i = 0; i < nb; ++i) {
        const float wh = w[h0 + i];
        const float* d = dots.data() + i * kKeys;
        for (int64_t k = 0; k < nk; ++k) sc[k] += wh * std::max(d[k], 0.0f);
      }
    }
  }
}

template <class K>
void scores(const float* q, const float* w, const K* keys, int64_t nh, int64_t hd, int64_t n_keys,
            bool split_keys, float* score) {
  if (!split_keys) return scores_range(q, w, keys, nh, hd, 0, n_keys, score);
  run_in_compute_arena([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, n_keys, 512), [&](const tbb::blocked_range<int64_t>& r) {
      scores_range(q, w, keys, nh, hd, r.begin(), r.end(), score + r.begin());
    });
  });
}

}  // namespace

void index_scores(const float* q, const float* w, const float* keys, int64_t nh, int64_t hd, int64_t n_keys,
                  bool split_keys, float* score) {
  scores(q, w, keys, nh, hd, n_keys, split_keys, score);
}

void index_scores(const float* q, const float* w, const uint16_t* keys, int64_t nh, int64_t hd,
                  int64_t n_keys, bool split_keys, float* score) {
  scores(q, w, keys, nh, hd, n_keys, split_keys, score);
}

}  // namespace strata
