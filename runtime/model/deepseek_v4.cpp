#include "runtime/model/deepseek_v4.h"

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
#include "runtime/model/mhc.h"
#include "runtime/model/engram.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/moe_block.h"
#include "runtime/model/moe_ffn.h"
#include "runtime/model/router.h"
#include "runtime/model/step_batch.h"
#include "runtime/model/v4_compressor.h"
#include "runtime/model/weights.h"

namespace strata {
namespace {

using Buf = std::vector<float>;

Buf zeros(int64_t n) { return Buf(static_cast<size_t>(n), 0.0f); }

constexpr int64_t kKvQuantBlock = 64;     // FP8 blocks of the KV non-rope dims
constexpr int64_t kIndexQuantBlock = 32;  // FP4 blocks of the indexer's queries and keys

struct Layer {
  Buf attn_norm, ffn_norm;
  HcWeights hc_attn, hc_ffn;
  // attention
  Buf sink, q_norm, kv_norm;
  WeightView wq_a, wq_b, wkv, wo_a, wo_b;
  int64_t ratio = 0;
  const Rope* rope = nullptr;
  WeightView index_wq_b, index_weights_proj;
  // FFN: the MoeBlock's
};

struct LayerCache {
  Buf window;  // ring of sliding_window rows [window, head_dim]: position p at p % window
  std::unique_ptr<Compressor> compressor, index_compressor;
};

class DeepseekV4;

class V4Sequence final : public Sequence {
 public:
  V4Sequence(const DeepseekV4* owner, int64_t capacity) : Sequence(capacity), owner(owner) { reset(); }
  void reset() override;
  void advance(int64_t n) { n_past_ += n; }

  const DeepseekV4* owner;
  std::vector<LayerCache> cache;
  Engram::State engram;
};

using Span = StepLayout::Span;
V4Sequence& v4(const Span& g) { return *static_cast<V4Sequence*>(g.seq); }

// The indexer's queries and head weights of every token of a step (ratio-4 layers).
struct IndexInputs {
  Buf q, w;  // [N, nh, hd], [N, nh]
};

class DeepseekV4 final : public CausalLM {
 public:
  DeepseekV4(const ModelFiles& m, const ModelOptions& opts);
  const ModelConfig& config() const override { return c_; }
  int64_t context() const override { return context_; }
  std::unique_ptr<Sequence> new_sequence() const override { return std::make_unique<V4Sequence>(this, context_); }
  void forward_batch(std::span<const SequenceStep> steps, const ForwardOptions& opts) override;
  RoutingStats routing_stats() const override { return moe_->stats(); }
  ScheduleStats schedule_stats() const override { return moe_->schedule(); }
  const ExpertSource& experts() const override { return *experts_; }
  const Engram* engram() const override { return engram_.get(); }
  std::vector<std::string> load_notes() const override { return notes_; }
  // An empty sequence's caches: window rings and compressors, reserved for its capacity.
  void init_sequence(V4Sequence& s) const;

 private:
  void load_layer(int64_t li, const std::string& file);
  void attention(int64_t li, const StepLayout& lay, const Buf& x, Buf& out);
  IndexInputs index_inputs(int64_t li, const Buf& x, const Buf& qr, const std::vector<int64_t>& pos);
  // Compressed rows each query of the span sees on a ratio-4 layer: [n][<= index_topk].
  std::vector<std::vector<int64_t>> index_select(int64_t li, const Span& g, const IndexInputs& in);

  const ModelConfig& c_;
  Weights w_;
  ModelOptions opts_;
  WeightView embed_, head_;
  Buf norm_;
  HcWeights hc_head_;
  HcParams hc_;
  Rope rope_window_, rope_compressed_;
  std::vector<Layer> layers_;
  float softmax_scale_ = 1;
  int64_t context_ = 0;
  std::vector<std::string> notes_;
  std::unique_ptr<Engram> engram_;
  std::unique_ptr<ExpertSource> experts_;
  std::unique_ptr<MoeBlock> moe_;
};

void V4Sequence::reset() {
  n_past_ = 0;
  owner->init_sequence(*this);
}

RopeParams v4_rope(const ModelConfig& c, bool compressed) {
  RopeParams p;
  p.dim = c.qk_rope_head_dim;
  p.theta = compressed ? c.compress_rope_theta : c.rope_theta;
  if (compressed && c.rope_scaling.type == "yarn") {
    p.factor = c.rope_scaling.factor;
    p.original_max_positions = c.rope_scaling.original_max_position_embeddings;
    p.beta_fast = c.rope_scaling.beta_fast;
    p.beta_slow = c.rope_scaling.beta_slow;
  }
  return p;
}

HcWeights hc_weights(const Weights& w, const std::string& prefix) {
  return {w.vector(prefix + "_fn"), w.vector(prefix + "_base"), w.vector(prefix + "_scale")};
}

DeepseekV4::DeepseekV4(const ModelFiles& m, const ModelOptions& opts)
    : c_(m.config),
      w_(m.index),
      opts_(opts),
      rope_window_(v4_rope(m.config, false)),
      rope_compressed_(v4_rope(m.config, true)) {
  const ModelConfig& c = c_;
  const std::string file = m.index.path().string();
  if (c.head_dim <= c.qk_rope_head_dim || c.num_attention_heads % c.o_groups != 0)
    throw_error({file, "head_dim", -1}, "head_dim must exceed qk_rope_head_dim and o_groups divide the heads");
  embed_ = w_.matrix("embed.weight");
  head_ = w_.matrix(c.tie_word_embeddings ? "embed.weight" : "head.weight");
  norm_ = w_.vector("norm.weight");
  hc_head_ = hc_weights(w_, "hc_head");
  hc_ = {c.hc_mult, c.hidden_size, c.hc_sinkhorn_iters, static_cast<float>(c.rms_norm_eps),
         static_cast<float>(c.hc_eps)};
  softmax_scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  context_ = effective_context(c, opts);
  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t li = 0; li < c.num_hidden_layers; ++li) load_layer(li, file);
  engram_ = load_engram(m, w_);
  if (engram_ && (opts.engram_cache_bytes > 0 || !opts.engram_placement.empty()))
    store_engram_tables(*engram_, m.index, opts.engram_cache_bytes, opts.expert_io_pread, opts.engram_placement);
  experts_ = make_expert_source(m, w_, opts);
  std::vector<MoeLayerWeights> moe_layers;
  for (int64_t li = 0; li < c.num_hidden_layers; ++li) moe_layers.push_back(load_moe_layer(w_, c, li, file));
  moe_ = std::make_unique<MoeBlock>(c, opts, std::move(moe_layers), *experts_);
  if (c.num_nextn_predict_layers > 0)
    notes_.push_back(std::to_string(c.num_nextn_predict_layers) +
                     " multi-token-prediction module(s) in the checkpoint: not loaded (generation does not use them)");
}

void DeepseekV4::load_layer(int64_t li, const std::string& file) {
  const ModelConfig& c = c_;
  Layer& L = layers_[static_cast<size_t>(li)];
  const std::string p = "layers." + std::to_string(li) + ".";
  L.attn_norm = w_.vector(p + "attn_norm.weight");
  L.ffn_norm = w_.vector(p + "ffn_norm.weight");
  L.hc_attn = hc_weights(w_, p + "hc_attn");
  L.hc_ffn = hc_weights(w_, p + "hc_ffn");
  L.sink = w_.vector(p + "attn.attn_sink");
  L.wq_a = w_.matrix(p + "attn.wq_a.weight");
  L.q_norm = w_.vector(p + "attn.q_norm.weight");
  L.wq_b = w_.matrix(p + "attn.wq_b.weight");
  L.wkv = w_.matrix(p + "attn.wkv.weight");
  L.kv_norm = w_.vector(p + "attn.kv_norm.weight");
  L.wo_a = w_.matrix(p + "attn.wo_a.weight");
  L.wo_b = w_.matrix(p + "attn.wo_b.weight");
  L.ratio = c.compress_ratio(li);
  L.rope = L.ratio > 0 ? &rope_compressed_ : &rope_window_;
  if (L.ratio == 4) {
    L.index_wq_b = w_.matrix(p + "attn.indexer.wq_b.weight");
    L.index_weights_proj = w_.matrix(p + "attn.indexer.weights_proj.weight");
    if (c.index_head_dim % kIndexQuantBlock != 0 || (c.index_head_dim & (c.index_head_dim - 1)) != 0)
      throw_error({file, "index_head_dim", -1}, "must be a power of two and a multiple of 32 (Hadamard, FP4 blocks)");
  }
}

void DeepseekV4::init_sequence(V4Sequence& s) const {
  const ModelConfig& c = c_;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t D = c.head_dim, rd = c.qk_rope_head_dim, ID = c.index_head_dim;
  const bool quant = opts_.act_quant;
  s.cache.resize(layers_.size());
  if (engram_) s.engram = engram_->new_state();
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& L = layers_[li];
    LayerCache& lc = s.cache[li];
    lc.window.assign(static_cast<size_t>(c.sliding_window * D), 0.0f);
    if (L.ratio <= 0) continue;
    if (lc.compressor) {  // a reset: the compressors and their reservations stay
      lc.compressor->reset();
      if (lc.index_compressor) lc.index_compressor->reset();
      continue;
    }
    const std::string p = "layers." + std::to_string(li) + ".attn.";
    auto weights = [&](const std::string& q) {
      return CompressorWeights{w_.matrix(q + "wkv.weight"), w_.matrix(q + "wgate.weight"), w_.vector(q + "ape"),
                               w_.vector(q + "norm.weight")};
    };
    lc.compressor = std::make_unique<Compressor>(weights(p + "compressor."), L.ratio, D, eps, L.rope,
                                                 [D, rd, quant](float* row) {
                                                   if (quant) fp8_qdq(row, D - rd, kKvQuantBlock, true);
                                                 });
    lc.compressor->reserve_tokens(s.capacity());
    if (L.ratio == 4) {
      lc.index_compressor = std::make_unique<Compressor>(weights(p + "indexer.compressor."), L.ratio, ID, eps, L.rope,
                                                         [ID, quant](float* row) {
                                                           hadamard(row, ID);
                                                           if (quant) fp4_qdq(row, ID, kIndexQuantBlock);
                                                         });
      lc.index_compressor->reserve_tokens(s.capacity());
    }
  }
}

IndexInputs DeepseekV4::index_inputs(int64_t li, const Buf& x, const Buf& qr, const std::vector<int64_t>& pos) {
  const Layer& L = layers_[static_cast<size_t>(li)];
  const int64_t nh = c_.index_n_heads, hd = c_.index_head_dim, rd = c_.qk_rope_head_dim,
                N = static_cast<int64_t>(pos.size());
  IndexInputs in{zeros(N * nh * hd), zeros(N * nh)};
  linear(L.index_wq_b, qr.data(), N, in.q.data());
  linear(L.index_weights_proj, x.data(), N, in.w.data());
  for (int64_t t = 0; t < N; ++t)
    for (int64_t h = 0; h < nh; ++h) {
      float* qh = in.q.data() + (t * nh + h) * hd;
      L.rope->apply_interleaved(qh + hd - rd, pos[static_cast<size_t>(t)]);
      hadamard(qh, hd);
      if (opts_.act_quant) fp4_qdq(qh, hd, kIndexQuantBlock);
    }
  return in;
}

std::vector<std::vector<int64_t>> DeepseekV4::index_select(int64_t li, const Span& g, const IndexInputs& in) {
  const Layer& L = layers_[static_cast<size_t>(li)];
  const Compressor& keys = *v4(g).cache[static_cast<size_t>(li)].index_compressor;
  const int64_t nh = c_.index_n_heads, hd = c_.index_head_dim;
  const float wscale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd * nh)));
  std::vector<std::vector<int64_t>> picked(static_cast<size_t>(g.n));
  Buf score;
  for (int64_t t = 0; t < g.n; ++t) {
    const int64_t pos = g.pos0 + t;
    const float* q = in.q.data() + (g.off + t) * nh * hd;
    const float* w = in.w.data() + (g.off + t) * nh;
    const int64_t rows = (pos + 1) / L.ratio;
    score.assign(static_cast<size_t>(rows), 0.0f);
    for (int64_t j = 0; j < rows; ++j) {
      const float* k = keys.row(j);
      float acc = 0;
      for (int64_t h = 0; h < nh; ++h) acc += std::max(dot_f32(q + h * hd, k, hd), 0.0f) * w[h] * wscale;
      score[static_cast<size_t>(j)] = acc;
    }
    std::vector<int64_t>& order = picked[static_cast<size_t>(t)];
    order.resize(static_cast<size_t>(rows));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
    order.resize(static_cast<size_t>(std::min(rows, c_.index_topk)));
  }
  return picked;
}

void DeepseekV4::attention(int64_t li, const StepLayout& lay, const Buf& x, Buf& out) {
  const Layer& L = layers_[static_cast<size_t>(li)];
  const int64_t H = c_.num_attention_heads, D = c_.head_dim, rd = c_.qk_rope_head_dim, win = c_.sliding_window;
  const int64_t G = c_.o_groups, R = c_.o_lora_rank, N = lay.size(), hidden = c_.hidden_size;
  const float eps = static_cast<float>(c_.rms_norm_eps);
  const std::vector<int64_t>& pos = lay.pos;

  Buf qr = zeros(N * c_.q_lora_rank), q = zeros(N * H * D), kv = zeros(N * D);
  linear(L.wq_a, x.data(), N, qr.data());
  rms_norm(qr.data(), L.q_norm.data(), qr.data(), N, c_.q_lora_rank, eps);
  linear(L.wq_b, qr.data(), N, q.data());
  const Buf ones(static_cast<size_t>(D), 1.0f);
  rms_norm(q.data(), ones.data(), q.data(), N * H, D, eps);
  linear(L.wkv, x.data(), N, kv.data());
  rms_norm(kv.data(), L.kv_norm.data(), kv.data(), N, D, eps);
  for (int64_t t = 0; t < N; ++t) {
    for (int64_t h = 0; h < H; ++h) L.rope->apply_interleaved(q.data() + (t * H + h) * D + D - rd, pos[t]);
    float* k = kv.data() + t * D;
    L.rope->apply_interleaved(k + D - rd, pos[t]);
    if (opts_.act_quant) fp8_qdq(k, D - rd, kKvQuantBlock, true);
  }
  // Compressed rows of blocks completed by these tokens exist before any of them attends (a
  // query only sees rows whose block ends at or before its own position).
  for (const Span& g : lay.spans) {
    LayerCache& lc = v4(g).cache[static_cast<size_t>(li)];
    if (lc.compressor) lc.compressor->append(x.data() + g.off * hidden, g.n, g.pos0);
    if (lc.index_compressor) lc.index_compressor->append(x.data() + g.off * hidden, g.n, g.pos0);
  }
  IndexInputs index;
  if (L.ratio == 4) index = index_inputs(li, x, qr, pos);

  Buf o = zeros(N * H * D);
  std::vector<const float*> keys;
  for (const Span& g : lay.spans) {
    LayerCache& lc = v4(g).cache[static_cast<size_t>(li)];
    std::vector<std::vector<int64_t>> picked;
    if (L.ratio == 4) picked = index_select(li, g, index);
    // Window key of position p: from this step, or from the ring (the window reaches back at
    // most win-1 positions, all still in the ring).
    auto window_key = [&](int64_t p) -> const float* {
      return p >= g.pos0 ? kv.data() + (g.off + p - g.pos0) * D : lc.window.data() + (p % win) * D;
    };
    for (int64_t t = 0; t < g.n; ++t) {
      const int64_t p_t = g.pos0 + t, row = g.off + t;
      keys.clear();
      for (int64_t p = std::max<int64_t>(0, p_t - win + 1); p <= p_t; ++p) keys.push_back(window_key(p));
      if (L.ratio == 4) {
        for (int64_t j : picked[static_cast<size_t>(t)]) keys.push_back(lc.compressor->row(j));
      } else if (L.ratio > 0) {
        for (int64_t j = 0; j < (p_t + 1) / L.ratio; ++j) keys.push_back(lc.compressor->row(j));
      }
      const int64_t nk = static_cast<int64_t>(keys.size());
      // Heads are independent: one parallel job over them, each with its own scores.
      run_in_compute_arena([&] {
        tbb::parallel_for(int64_t{0}, H, [&](int64_t h) {
          Buf scores(static_cast<size_t>(nk));
          const float* qh = q.data() + (row * H + h) * D;
          float m = L.sink[h];
          for (int64_t i = 0; i < nk; ++i) {
            scores[i] = dot_f32(qh, keys[i], D) * softmax_scale_;
            m = std::max(m, scores[i]);
          }
          double den = std::exp(static_cast<double>(L.sink[h]) - m);
          for (int64_t i = 0; i < nk; ++i) {
            scores[i] = std::exp(scores[i] - m);
            den += scores[i];
          }
          float* oh = o.data() + (row * H + h) * D;
          for (int64_t i = 0; i < nk; ++i) axpy_f32(static_cast<float>(scores[i] / den), keys[i], oh, D);
          // Rotating by the negative angle undoes the query position's rotation.
          L.rope->apply_interleaved(oh + D - rd, -p_t);
        });
      });
    }
    for (int64_t t = 0; t < g.n; ++t)
      std::copy_n(kv.data() + (g.off + t) * D, D, lc.window.data() + ((g.pos0 + t) % win) * D);
  }

  // Grouped low-rank output: group g's heads through rows [g·R, (g+1)·R) of wo_a.
  const int64_t group_in = H * D / G;
  Buf low = zeros(N * G * R);
  for (int64_t gi = 0; gi < G; ++gi)
    linear_rows(L.wo_a, gi * R, R, o.data() + gi * group_in, N, H * D, low.data() + gi * R, G * R);
  linear(L.wo_b, low.data(), N, out.data());
}

void DeepseekV4::forward_batch(std::span<const SequenceStep> steps, const ForwardOptions&) {
  const StepLayout lay = lay_out_steps(steps, c_.max_position_embeddings);
  for (const Span& g : lay.spans) {
    auto* seq = dynamic_cast<V4Sequence*>(g.seq);
    if (!seq || seq->owner != this) throw Error("forward: a sequence made by another model");
  }
  const int64_t N = lay.size(), d = c_.hidden_size, hc = c_.hc_mult;
  if (N == 0) return;
  // Streams X [N, hc, d]: every stream starts as the token's embedding.
  Buf X = zeros(N * hc * d);
  embed_tokens(embed_, lay, hc, X.data());
  const EngramBinding bind(engram_.get());
  if (engram_)
    for (const Span& g : lay.spans) {
      bind.to(&v4(g).engram);
      engram_->begin_step(steps[g.step].tokens);
    }
  const float eps = static_cast<float>(c_.rms_norm_eps);
  Buf u = zeros(N * d), x = zeros(N * d), y = zeros(N * d), post = zeros(N * hc), comb = zeros(N * hc * hc);
  auto sublayer = [&](const HcWeights& hw, const Buf& norm_w, auto&& body) {
    for (int64_t t = 0; t < N; ++t)
      hc_pre(hc_, hw, X.data() + t * hc * d, u.data() + t * d, post.data() + t * hc, comb.data() + t * hc * hc);
    rms_norm(u.data(), norm_w.data(), x.data(), N, d, eps);
    body();
    for (int64_t t = 0; t < N; ++t)
      hc_post(hc_, y.data() + t * d, post.data() + t * hc, comb.data() + t * hc * hc, X.data() + t * hc * d);
  };
  for (int64_t li = 0; li < c_.num_hidden_layers; ++li) {
    const Layer& L = layers_[static_cast<size_t>(li)];
    // Engram adds to every stream before the attention sublayer.
    if (engram_ && engram_->is_layer(static_cast<int>(li)))
      for (const Span& g : lay.spans) {
        bind.to(&v4(g).engram);
        engram_->apply(static_cast<int>(li), X.data() + g.off * hc * d, g.n);
      }
    sublayer(L.hc_attn, L.attn_norm, [&] { attention(li, lay, x, y); });
    sublayer(L.hc_ffn, L.ffn_norm, [&] { moe_->forward(li, x.data(), lay.tokens, y.data()); });
    if (opts_.check_finite_layers)
      for (const Span& g : lay.spans)
        check_finite_activations(X.data() + g.off * hc * d, g.n, hc * d, g.pos0, "layer", li);
  }
  for (const Span& g : lay.spans) v4(g).advance(g.n);
  for (const Span& g : lay.spans)
    check_finite_activations(X.data() + g.off * hc * d, g.n, hc * d, g.pos0, "the last layer");
  experts_->end_step();

  const std::vector<int64_t> rows = logit_rows(steps, lay);
  const int64_t R = static_cast<int64_t>(rows.size());
  Buf hs = zeros(R * d);
  for (int64_t r = 0; r < R; ++r) hc_head(hc_, hc_head_, X.data() + rows[static_cast<size_t>(r)] * hc * d, u.data() + r * d);
  rms_norm(u.data(), norm_.data(), hs.data(), R, d, eps);
  head_logits(head_, hs, steps, lay);
}

}  // namespace

std::unique_ptr<CausalLM> make_deepseek_v4(const ModelFiles& m, const ModelOptions& opts) {
  return std::make_unique<DeepseekV4>(m, opts);
}

}  // namespace strata
