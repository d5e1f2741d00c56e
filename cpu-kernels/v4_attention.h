// The attention cores of DeepSeek-V4: attention with a per-head sink logit over a gathered set
// of keys (its sliding window and the compressed rows a query sees), the compressed-row
// indexer's choice, and the compressor's gated softmax pooling of a block of tokens.
#pragma once

#include <cstdint>

namespace strata {

// out [H, D] = Σ_i softmax_i(q_h · keys[i] · scale ; sink[h]) keys[i] per head h of q [H, D]:
// the sink is one more logit in each head's softmax, with no value. Heads run in parallel on
// the compute arena.
void sink_attention(const float* q, const float* const* keys, int64_t nk, const float* sink, int64_t H, int64_t D,
                    float scale, float* out);
// The same over keys stored as bf16 rows (--cache-type-k bf16): each key widened to f32 as it is
// gathered, so the result is the f32 one's over the bf16-rounded keys.
void sink_attention(const float* q, const uint16_t* const* keys, int64_t nk, const float* sink, int64_t H,
                    int64_t D, float scale, float* out);

// For token t (position first_pos + t) the top_k of its (position + 1) / ratio compressed
// rows keys [rows, hd] by Σ_h relu(q[t][h] · key) · (w[t][h] · wscale) (ties to the earlier row),
// highest first, in picked [n, top_k]; count[t] of them. q [n, nh, hd], w [n, nh]. Tokens in
// parallel on the compute arena.
void index_pick(const float* q, const float* w, const float* keys, int64_t n, int64_t first_pos, int64_t ratio,
                int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked, int64_t* count);
// The same over compressed rows stored as bf16 (--cache-type-k bf16; index_scores widens them).
void index_pick(const float* q, const float* w, const uint16_t* keys, int64_t n, int64_t first_pos,
                int64_t ratio, int64_t nh, int64_t hd, float wscale, int64_t top_k, int64_t* picked,
                int64_t* count);

// One compressed row out [D] from a block of `ratio` tokens' kv and score [ratio, width]: per
// dim d, the softmax over the block's scores of column own + d (and, with prev, the previous
// block's column d) weights the matching kv entries.
void compress_pool(const float* kv, const float* score, const float* prev_kv, const float* prev_score, int64_t ratio,
                   int64_t width, int64_t own, int64_t D, float* out);

}  // namespace strata
