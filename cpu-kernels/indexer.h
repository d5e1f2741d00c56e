// The DSA indexer's key scores (DeepSeek-V3.2's index_topk and V4's index_pick): how much a
// token's indexer heads want each cached key, from which each picks its top-k.
#pragma once

#include <cstdint>

namespace strata {

// score[k] = Σ_h w[h] · relu(q[h] · keys[k]) for k < n_keys: q [nh, hd], w [nh], keys
// [n_keys, hd] row-major. The heads' dots 8 at a time against the keys as they lie
// (attn_scores_rows_f32: a key read once for the 8), each key's sum over the heads in head
// order, so a score does not depend on how the keys are split. split_keys: chunks of keys in
// parallel on the compute arena (one token alone); otherwise on the calling thread.
void index_scores(const float* q, const float* w, const float* keys, int64_t nh, int64_t hd, int64_t n_keys,
                  bool split_keys, float* score);
// The same over keys stored as bf16 rows (--cache-type-k bf16): each chunk of keys widened to
// f32 as it is read, so the scores are the f32 ones over the bf16-rounded keys, bit for bit.
void index_scores(const float* q, const float* w, const uint16_t* keys, int64_t nh, int64_t hd,
                  int64_t n_keys, bool split_keys, float* score);

}  // namespace strata
