#include "runtime/model/deepseek_v3.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/linear.h"
#include "cpu-kernels/ops.h"
#include "cpu-kernels/row_dequant.h"
#include "cpu-kernels/rope.h"
#include "runtime/common/error.h"
#include "runtime/model/engram.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/moe_block.h"
#include "runtime/model/moe_ffn.h"
#include "runtime/model/router.h"
#include "runtime/model/step_batch.h"
#include "runtime/model/weights.h"

namespace strata {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

using Buf = std::vector<float>;

Buf zeros(int64_t n) { return Buf(static_cast<size_t>(n), 0.0f); }


// Per-head pieces of the MLA up-projection, from either wkv_b [H·(nope+v), kv_lora] or the
// split GGUF form wk_b [H, kv_lora, nope] (each head's key half transposed) + wv_b [H, v, kv_lora].
struct KvUp {
  bool split = false;
  WeightView kv_b, k_b, v_b;
  int64_t nope = 0, v = 0, kv_lora = 0;

  // q_lat[t] = K_hᵀ q_nope[t]  (nope -> kv_lora) for n tokens.
  void absorb_q(int64_t h, const float* q, int64_t n, int64_t ldq, float* out, int64_t ldo) const {
    if (split) linear_rows(k_b, h * kv_lora, kv_lora, q, n, ldq, out, ldo);
    else linear_t_rows(kv_b, h * (nope + v), nope, q, n, ldq, out, ldo);
  }
  // k_nope[s] = K_h latent[s]  (kv_lora -> nope).
  void keys(int64_t h, const float* lat, int64_t n, float* out) const {
    if (split) linear_t_rows(k_b, h * kv_lora, kv_lora, lat, n, kv_lora, out, nope);
    else linear_rows(kv_b, h * (nope + v), nope, lat, n, kv_lora, out, nope);
  }
  // v[s] = V_h latent[s]  (kv_lora -> v); also out_h = V_h o_lat.
  void values(int64_t h, const float* lat, int64_t n, int64_t ldl, float* out, int64_t ldo) const {
    if (split) linear_rows(v_b, h * v, v, lat, n, ldl, out, ldo);
    else linear_rows(kv_b, h * (nope + v) + nope, v, lat, n, ldl, out, ldo);
  }
};

struct Indexer {
  WeightView wq_b, wk, weights_proj;
  Buf k_norm_w, k_norm_b;
};

struct Layer {
  Buf attn_norm, ffn_norm, q_norm, kv_norm;
  bool q_lora = false;
  WeightView wq, wq_a, wq_b, wkv_a, wo;
  KvUp kv_up;
  bool has_indexer = false;
  Indexer indexer;
  bool moe = false;
  Mlp dense;  // dense layers; MoE layers are the MoeBlock's
};

struct LayerCache {
  Buf latent, k_rope, index_k;  // [n_past, kv_lora], [n_past, rope], [n_past, index_head_dim]
};

class DeepseekV3;

class V3Sequence final : public Sequence {
 public:
  V3Sequence(const DeepseekV3* owner, int64_t capacity, const ModelConfig& c, const Engram* engram)
      : Sequence(capacity), owner(owner), engram_src(engram) {
    cache.resize(static_cast<size_t>(c.num_hidden_layers));
    for (LayerCache& lc : cache) {
      lc.latent.reserve(static_cast<size_t>(capacity * c.kv_lora_rank));
      lc.k_rope.reserve(static_cast<size_t>(capacity * c.qk_rope_head_dim));
      if (c.arch == Arch::DeepseekV32) lc.index_k.reserve(static_cast<size_t>(capacity * c.index_head_dim));
    }
    if (engram) this->engram = engram->new_state();
  }
  void reset() override {
    n_past_ = 0;
    for (LayerCache& lc : cache) {
      lc.latent.clear();
      lc.k_rope.clear();
      lc.index_k.clear();
    }
    if (engram_src) engram = engram_src->new_state();
  }
  // Drops rows a failed step appended past n_past (the reservation stays).
  void trim(const ModelConfig& c) {
    for (LayerCache& lc : cache) {
      lc.latent.resize(static_cast<size_t>(n_past_ * c.kv_lora_rank));
      lc.k_rope.resize(static_cast<size_t>(n_past_ * c.qk_rope_head_dim));
      if (!lc.index_k.empty()) lc.index_k.resize(static_cast<size_t>(n_past_ * c.index_head_dim));
    }
  }
  void advance(int64_t n) { n_past_ += n; }

  const DeepseekV3* owner;
  const Engram* engram_src;
  std::vector<LayerCache> cache;
  Engram::State engram;
};

using Span = StepLayout::Span;
V3Sequence& v3(const Span& g) { return *static_cast<V3Sequence*>(g.seq); }

// The V3.2 indexer's queries, keys and head weights of every token of a step.
struct IndexInputs {
  Buf q, k, w;  // [N, nh, hd], [N, hd], [N, nh]
};

class DeepseekV3 final : public CausalLM {
 public:
  DeepseekV3(const ModelFiles& m, const ModelOptions& opts);
  const ModelConfig& config() const override { return c_; }
  int64_t context() const override { return context_; }
  std::unique_ptr<Sequence> new_sequence() const override {
    return std::make_unique<V3Sequence>(this, context_, c_, engram_.get());
  }
  void forward_batch(std::span<const SequenceStep> steps, const ForwardOptions& opts) override;
  RoutingStats routing_stats() const override { return moe_->stats(); }
  ScheduleStats schedule_stats() const override { return moe_->schedule(); }
  const ExpertSource& experts() const override { return *experts_; }
  const Engram* engram() const override { return engram_.get(); }

 private:
  void attention(int64_t li, const StepLayout& lay, const Buf& x, MlaMode mode, Buf& out);
  IndexInputs index_inputs(int64_t li, const Buf& x, const Buf& q_latent, const std::vector<int64_t>& pos);
  // Appends the span's indexer keys to its cache; the keys each of its queries may attend
  // to: allowed[t * n_ctx + s].
  std::vector<uint8_t> index_select(int64_t li, const Span& g, const IndexInputs& in);

  const ModelConfig& c_;
  Weights w_;
  WeightView embed_, head_;
  Buf norm_;
  std::vector<Layer> layers_;
  Rope rope_, index_rope_;
  float softmax_scale_ = 1;
  bool index_pow2_scale_ = false;
  int64_t context_ = 0;
  ModelOptions opts_;
  std::unique_ptr<Engram> engram_;
  std::unique_ptr<ExpertSource> experts_;
  std::unique_ptr<MoeBlock> moe_;
};

RopeParams rope_params(const ModelConfig& c) {
  RopeParams p;
  p.dim = c.qk_rope_head_dim;
  p.theta = c.rope_theta;
  if (c.rope_scaling.type == "yarn") {
    p.factor = c.rope_scaling.factor;
    p.original_max_positions = c.rope_scaling.original_max_position_embeddings;
    p.beta_fast = c.rope_scaling.beta_fast;
    p.beta_slow = c.rope_scaling.beta_slow;
  }
  return p;
}

DeepseekV3::DeepseekV3(const ModelFiles& m, const ModelOptions& opts)
    : c_(m.config), w_(m.index), rope_(rope_params(m.config)), index_rope_(rope_params(m.config)), opts_(opts) {
  const ModelConfig& c = c_;
  embed_ = w_.matrix("embed.weight");
  head_ = w_.matrix(c.tie_word_embeddings ? "embed.weight" : "head.weight");
  norm_ = w_.vector("norm.weight");
  softmax_scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim)));
  if (c.rope_scaling.type == "yarn" && c.rope_scaling.mscale_all_dim != 0) {
    const double ms = yarn_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    softmax_scale_ = static_cast<float>(softmax_scale_ * ms * ms);
  }
  index_pow2_scale_ = c.quantization.scale_fmt == "ue8m0";
  context_ = effective_context(c, opts);
  engram_ = load_engram(m, w_);
  if (engram_ && (opts.engram_cache_bytes > 0 || !opts.engram_placement.empty()))
    store_engram_tables(*engram_, m.index, opts.engram_cache_bytes, opts.expert_io_pread, opts.engram_placement);
  experts_ = make_expert_source(m, w_, opts);

  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t li = 0; li < c.num_hidden_layers; ++li) {
    Layer& L = layers_[static_cast<size_t>(li)];
    const std::string p = "layers." + std::to_string(li) + ".";
    L.attn_norm = w_.vector(p + "attn_norm.weight");
    L.ffn_norm = w_.vector(p + "ffn_norm.weight");
    L.q_lora = c.q_lora_rank > 0;
    if (L.q_lora) {
      L.wq_a = w_.matrix(p + "attn.wq_a.weight");
      L.q_norm = w_.vector(p + "attn.q_norm.weight");
      L.wq_b = w_.matrix(p + "attn.wq_b.weight");
    } else {
      L.wq = w_.matrix(p + "attn.wq.weight");
    }
    L.wkv_a = w_.matrix(p + "attn.wkv_a.weight");
    L.kv_norm = w_.vector(p + "attn.kv_norm.weight");
    L.wo = w_.matrix(p + "attn.wo.weight");
    KvUp& up = L.kv_up;
    up.nope = c.qk_nope_head_dim;
    up.v = c.v_head_dim;
    up.kv_lora = c.kv_lora_rank;
    if (w_.has(p + "attn.wkv_b.weight")) {
      up.kv_b = w_.matrix(p + "attn.wkv_b.weight");
    } else if (w_.has(p + "attn.wk_b.weight") && w_.has(p + "attn.wv_b.weight")) {
      up.split = true;
      up.k_b = w_.matrix(p + "attn.wk_b.weight");
      up.v_b = w_.matrix(p + "attn.wv_b.weight");
      if (up.k_b.rows != c.num_attention_heads * c.kv_lora_rank || up.k_b.cols != c.qk_nope_head_dim)
        throw_error({m.index.path().string(), p + "attn.wk_b.weight", -1},
                    "shape does not match [heads, kv_lora_rank, qk_nope_head_dim]");
      if (up.v_b.rows != c.num_attention_heads * c.v_head_dim || up.v_b.cols != c.kv_lora_rank)
        throw_error({m.index.path().string(), p + "attn.wv_b.weight", -1},
                    "shape does not match [heads, v_head_dim, kv_lora_rank]");
    } else {
      (void)w_.matrix(p + "attn.wkv_b.weight");  // throws: names the missing tensor
    }
    if (c.arch == Arch::DeepseekV32) {
      if (!L.q_lora)
        throw_error({m.index.path().string(), "q_lora_rank", -1}, "the V3.2 indexer needs a q LoRA latent");
      L.has_indexer = true;
      L.indexer.wq_b = w_.matrix(p + "attn.indexer.wq_b.weight");
      L.indexer.wk = w_.matrix(p + "attn.indexer.wk.weight");
      L.indexer.weights_proj = w_.matrix(p + "attn.indexer.weights_proj.weight");
      L.indexer.k_norm_w = w_.vector(p + "attn.indexer.k_norm.weight");
      L.indexer.k_norm_b = w_.vector(p + "attn.indexer.k_norm.bias");
    }
    L.moe = c.is_moe_layer(li);
    if (!L.moe)
      L.dense = {w_.matrix(p + "ffn.w1.weight"), w_.matrix(p + "ffn.w2.weight"), w_.matrix(p + "ffn.w3.weight")};
  }
  std::vector<MoeLayerWeights> moe_layers;
  for (int64_t li = 0; li < c.num_hidden_layers; ++li)
    moe_layers.push_back(load_moe_layer(w_, c, li, m.index.path().string()));
  moe_ = std::make_unique<MoeBlock>(c, opts, std::move(moe_layers), *experts_);
}

IndexInputs DeepseekV3::index_inputs(int64_t li, const Buf& x, const Buf& q_latent, const std::vector<int64_t>& pos) {
  const Indexer& ix = layers_[static_cast<size_t>(li)].indexer;
  const int64_t nh = c_.index_n_heads, hd = c_.index_head_dim, N = static_cast<int64_t>(pos.size());
  const int64_t block = std::min<int64_t>(128, hd);
  IndexInputs in{zeros(N * nh * hd), zeros(N * hd), zeros(N * nh)};
  linear(ix.wq_b, q_latent.data(), N, in.q.data());
  linear(ix.wk, x.data(), N, in.k.data());
  layer_norm(in.k.data(), ix.k_norm_w.data(), ix.k_norm_b.data(), in.k.data(), N, hd, 1e-6f);
  linear(ix.weights_proj, x.data(), N, in.w.data());
  const float wscale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(nh * hd)));
  for (float& v : in.w) v *= wscale;
  for (int64_t t = 0; t < N; ++t) {
    for (int64_t h = 0; h < nh; ++h) {
      float* qh = in.q.data() + (t * nh + h) * hd;
      index_rope_.apply_halves(qh, pos[t]);
      hadamard(qh, hd);
      fp8_qdq(qh, hd, block, index_pow2_scale_);
    }
    float* kt = in.k.data() + t * hd;
    index_rope_.apply_halves(kt, pos[t]);
    hadamard(kt, hd);
    fp8_qdq(kt, hd, block, index_pow2_scale_);
  }
  return in;
}

std::vector<uint8_t> DeepseekV3::index_select(int64_t li, const Span& g, const IndexInputs& in) {
  LayerCache& lc = v3(g).cache[static_cast<size_t>(li)];
  const int64_t nh = c_.index_n_heads, hd = c_.index_head_dim, n = g.n, n_ctx = g.pos0 + n;
  lc.index_k.insert(lc.index_k.end(), in.k.begin() + g.off * hd, in.k.begin() + (g.off + n) * hd);

  std::vector<uint8_t> allowed(static_cast<size_t>(n * n_ctx), 0);
  std::vector<float> score;
  std::vector<int64_t> order;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t visible = g.pos0 + t + 1;
    const float* q = in.q.data() + (g.off + t) * nh * hd;
    const float* w = in.w.data() + (g.off + t) * nh;
    score.assign(static_cast<size_t>(visible), 0.0f);
    for (int64_t s = 0; s < visible; ++s) {
      const float* ks = lc.index_k.data() + s * hd;
      float acc = 0;
      for (int64_t h = 0; h < nh; ++h) acc += w[h] * std::max(dot_f32(q + h * hd, ks, hd), 0.0f);
      score[static_cast<size_t>(s)] = acc;
    }
    order.resize(static_cast<size_t>(visible));
    std::iota(order.begin(), order.end(), 0);
    const int64_t keep = std::min(c_.index_topk, visible);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    for (int64_t i = 0; i < keep; ++i) allowed[static_cast<size_t>(t * n_ctx + order[i])] = 1;
  }
  return allowed;
}

void DeepseekV3::attention(int64_t li, const StepLayout& lay, const Buf& x, MlaMode mode_opt, Buf& out) {
  const std::vector<int64_t>& pos = lay.pos;
  const Layer& L = layers_[static_cast<size_t>(li)];
  const int64_t H = c_.num_attention_heads, dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim,
                dv = c_.v_head_dim, dl = c_.kv_lora_rank, dq = dn + dr, N = static_cast<int64_t>(pos.size());

  // Queries of every token of the step.
  Buf q = zeros(N * H * dq), q_latent;
  if (L.q_lora) {
    q_latent = zeros(N * c_.q_lora_rank);
    linear(L.wq_a, x.data(), N, q_latent.data());
    rms_norm(q_latent.data(), L.q_norm.data(), q_latent.data(), N, c_.q_lora_rank, static_cast<float>(c_.rms_norm_eps));
    linear(L.wq_b, q_latent.data(), N, q.data());
  } else {
    linear(L.wq, x.data(), N, q.data());
  }
  for (int64_t t = 0; t < N; ++t)
    for (int64_t h = 0; h < H; ++h) rope_.apply_interleaved(q.data() + (t * H + h) * dq + dn, pos[t]);

  // Latent and rope key of the new tokens, appended to each sequence's cache.
  Buf kv = zeros(N * (dl + dr));
  linear(L.wkv_a, x.data(), N, kv.data());
  for (const Span& g : lay.spans) {
    LayerCache& lc = v3(g).cache[static_cast<size_t>(li)];
    for (int64_t t = g.off; t < g.off + g.n; ++t) {
      float* row = kv.data() + t * (dl + dr);
      rms_norm(row, L.kv_norm.data(), row, 1, dl, static_cast<float>(c_.rms_norm_eps));
      rope_.apply_interleaved(row + dl, pos[t]);
      lc.latent.insert(lc.latent.end(), row, row + dl);
      lc.k_rope.insert(lc.k_rope.end(), row + dl, row + dl + dr);
    }
  }
  IndexInputs index;
  if (L.has_indexer) index = index_inputs(li, x, q_latent, pos);

  Buf heads_out = zeros(N * H * dv);
  for (const Span& g : lay.spans) {
    const LayerCache& lc = v3(g).cache[static_cast<size_t>(li)];
    const int64_t n = g.n, n_past = g.pos0, n_ctx = n_past + n;
    const float* qs = q.data() + g.off * H * dq;
    float* hs = heads_out.data() + g.off * H * dv;
    std::vector<uint8_t> allowed;
    if (L.has_indexer) allowed = index_select(li, g, index);
    auto visible = [&](int64_t t, int64_t s) {
      return s <= n_past + t && (allowed.empty() || allowed[static_cast<size_t>(t * n_ctx + s)]);
    };
    const MlaMode mode = mode_opt != MlaMode::Auto ? mode_opt : n > 1 ? MlaMode::Decompressed : MlaMode::Absorbed;

    // Heads are independent: one parallel job over them, each with its own scratch.
    if (mode == MlaMode::Absorbed) {
      run_in_compute_arena([&] {
        tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
          Buf q_lat = zeros(n * dl), o_lat = zeros(dl), scores = zeros(n_ctx);
          L.kv_up.absorb_q(h, qs + h * dq, n, H * dq, q_lat.data(), dl);
          for (int64_t t = 0; t < n; ++t) {
            const float* ql = q_lat.data() + t * dl;
            const float* qr = qs + (t * H + h) * dq + dn;
            for (int64_t s = 0; s < n_ctx; ++s) {
              if (!visible(t, s)) {
                scores[s] = kNegInf;
                continue;
              }
              const float a = dot_f32(ql, lc.latent.data() + s * dl, dl);
              const float b = dot_f32(qr, lc.k_rope.data() + s * dr, dr);
              scores[s] = (a + b) * softmax_scale_;
            }
            softmax(scores.data(), n_ctx);
            std::fill(o_lat.begin(), o_lat.end(), 0.0f);
            for (int64_t s = 0; s < n_ctx; ++s)
              if (scores[s] != 0) axpy_f32(scores[s], lc.latent.data() + s * dl, o_lat.data(), dl);
            L.kv_up.values(h, o_lat.data(), 1, dl, hs + (t * H + h) * dv, dv);
          }
        });
      });
    } else {
      run_in_compute_arena([&] {
        tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
          Buf k_nope = zeros(n_ctx * dn), v = zeros(n_ctx * dv), scores = zeros(n_ctx);
          L.kv_up.keys(h, lc.latent.data(), n_ctx, k_nope.data());
          L.kv_up.values(h, lc.latent.data(), n_ctx, dl, v.data(), dv);
          for (int64_t t = 0; t < n; ++t) {
            const float* qn = qs + (t * H + h) * dq;
            const float* qr = qn + dn;
            for (int64_t s = 0; s < n_ctx; ++s) {
              if (!visible(t, s)) {
                scores[s] = kNegInf;
                continue;
              }
              const float a = dot_f32(qn, k_nope.data() + s * dn, dn);
              const float b = dot_f32(qr, lc.k_rope.data() + s * dr, dr);
              scores[s] = (a + b) * softmax_scale_;
            }
            softmax(scores.data(), n_ctx);
            float* o = hs + (t * H + h) * dv;
            for (int64_t s = 0; s < n_ctx; ++s)
              if (scores[s] != 0) axpy_f32(scores[s], v.data() + s * dv, o, dv);
          }
        });
      });
    }
  }
  linear(L.wo, heads_out.data(), N, out.data());
}

void DeepseekV3::forward_batch(std::span<const SequenceStep> steps, const ForwardOptions& opts) {
  const StepLayout lay = lay_out_steps(steps, c_.max_position_embeddings);
  for (const Span& g : lay.spans) {
    auto* seq = dynamic_cast<V3Sequence*>(g.seq);
    if (!seq || seq->owner != this) throw Error("forward: a sequence made by another model");
    seq->trim(c_);
  }
  const int64_t N = lay.size(), d = c_.hidden_size;
  if (N == 0) return;
  Buf h = zeros(N * d);
  embed_tokens(embed_, lay, 1, h.data());
  // Engram state is per sequence: bound around each sequence's calls, unbound on any exit.
  const EngramBinding bind(engram_.get());
  if (engram_)
    for (const Span& g : lay.spans) {
      bind.to(&v3(g).engram);
      engram_->begin_step(steps[g.step].tokens);
    }
  const float eps = static_cast<float>(c_.rms_norm_eps);
  Buf x = zeros(N * d), y = zeros(N * d);
  for (int64_t li = 0; li < c_.num_hidden_layers; ++li) {
    const Layer& L = layers_[static_cast<size_t>(li)];
    if (engram_ && engram_->is_layer(static_cast<int>(li)))
      for (const Span& g : lay.spans) {
        bind.to(&v3(g).engram);
        engram_->apply(static_cast<int>(li), h.data() + g.off * d, g.n);
      }
    rms_norm(h.data(), L.attn_norm.data(), x.data(), N, d, eps);
    attention(li, lay, x, opts.mla, y);
    for (int64_t i = 0; i < N * d; ++i) h[i] += y[i];
    rms_norm(h.data(), L.ffn_norm.data(), x.data(), N, d, eps);
    if (L.moe) moe_->forward(li, x.data(), lay.tokens, y.data());
    else mlp_forward(L.dense, x.data(), N, y.data());
    for (int64_t i = 0; i < N * d; ++i) h[i] += y[i];
    if (opts_.check_finite_layers)
      for (const Span& g : lay.spans) check_finite_activations(h.data() + g.off * d, g.n, d, g.pos0, "layer", li);
  }
  for (const Span& g : lay.spans) v3(g).advance(g.n);
  for (const Span& g : lay.spans) check_finite_activations(h.data() + g.off * d, g.n, d, g.pos0, "the last layer");
  experts_->end_step();

  const std::vector<int64_t> rows = logit_rows(steps, lay);
  Buf hs = zeros(static_cast<int64_t>(rows.size()) * d);
  for (size_t r = 0; r < rows.size(); ++r)
    rms_norm(h.data() + rows[r] * d, norm_.data(), hs.data() + static_cast<int64_t>(r) * d, 1, d, eps);
  head_logits(head_, hs, steps, lay);
}

}  // namespace

std::unique_ptr<CausalLM> make_deepseek_v3(const ModelFiles& m, const ModelOptions& opts) {
  return std::make_unique<DeepseekV3>(m, opts);
}

}  // namespace strata
