#include "runtime/model/deepseek_v4.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cpu-kernels/scratch.h"
#include "runtime/model/device_layer.h"
#include "runtime/common/activity.h"
#include "runtime/common/error.h"
#include "cpu-kernels/mhc.h"
#include "runtime/model/engram.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/moe_block.h"
#include "runtime/model/router.h"
#include "runtime/model/step_batch.h"
#include "runtime/model/v4_compressor.h"
#include "runtime/model/weights.h"

namespace strata {
namespace {

using Buf = std::vector<float>;


constexpr int64_t kKvQuantBlock = 64;     // FP8 blocks of the KV non-rope dims
constexpr int64_t kIndexQuantBlock = 32;  // FP4 blocks of the indexer's queries and keys

// A layer's attention weights as the ops read them, in the memory of the device that runs the
// layer's attention (views into the files and the layer's vectors on the host).
struct AttnWeights {
  WeightView wq_a, wq_b, wkv, wo_a, wo_b, index_wq_b, index_weights_proj;
  const float *sink = nullptr, *q_norm = nullptr, *kv_norm = nullptr, *ones = nullptr;
  CompressorWeights compressor, index_compressor;
  // The sublayer around the attention: its norm and mHC mixing (on a device only where the plan
  // put them there too: hc.fn null otherwise, and the host mixes the streams).
  const float* attn_norm = nullptr;
  HcView hc;
};

// A compressor's vectors on the host.
struct CompressorVectors {
  Buf ape, norm;
};

struct Layer {
  Buf attn_norm, ffn_norm;
  HcWeights hc_attn, hc_ffn;
  // attention
  Buf sink, q_norm, kv_norm, ones;
  CompressorVectors compressor, index_compressor;
  int64_t ratio = 0;
  const Rope* rope = nullptr;
  AttnWeights host;
  // Where the layer's attention runs: the host, or the GPU the plan put its tensors on (the
  // weights copied there, the sequences' window rings and compressors of this layer held there).
  Device* dev = nullptr;
  AttnWeights on_dev;
  std::unique_ptr<DeviceCopies> dev_copies;
  const AttnWeights& weights() const { return dev->is_host() ? host : on_dev; }
  // FFN: the MoeBlock's
};

struct LayerCache {
  // Ring of sliding_window rows [window, head_dim]: position p at p % window; f32, or bf16 with
  // --cache-type-k bf16 (as both compressors' rows: the attention's and the indexer's).
  DeviceBuffer window;
  std::unique_ptr<Compressor> compressor, index_compressor;
};

class DeepseekV4;

class V4Sequence final : public Sequence {
 public:
  V4Sequence(const DeepseekV4* owner, int64_t capacity, std::shared_ptr<Device> gpu)
      : Sequence(capacity), owner(owner), gpu(std::move(gpu)) {
    reset();
  }
  void reset() override;
  void advance(int64_t n) { n_past_ += n; }

  const DeepseekV4* owner;
  std::shared_ptr<Device> gpu;  // outlives the caches it holds
  std::vector<LayerCache> cache;
  Engram::State engram;
};

using Span = StepLayout::Span;
V4Sequence& v4(const Span& g) { return *static_cast<V4Sequence*>(g.seq); }

class DeepseekV4 final : public CausalLM {
 public:
  DeepseekV4(const ModelFiles& m, const ModelOptions& opts);
  const ModelConfig& config() const override { return c_; }
  int64_t context() const override { return context_; }
  std::unique_ptr<Sequence> new_sequence() const override {
    const Activity doing("reserving a sequence's KV cache for", context_, "tokens");
    return std::make_unique<V4Sequence>(this, context_, gpu_);
  }
  void forward_step(std::span<const SequenceStep> steps, const ForwardOptions& opts) override;
  int64_t max_step_tokens() const override { return opts_.max_step_tokens; }
  RoutingStats routing_stats() const override { return moe_->stats(); }
  ScheduleStats schedule_stats() const override { return moe_->schedule(); }
  const ExpertSource& experts() const override { return *experts_; }
  const Engram* engram() const override { return engram_.get(); }
  std::vector<std::string> load_notes() const override { return notes_; }
  // An empty sequence's caches: window rings and compressors, reserved for its capacity.
  void init_sequence(V4Sequence& s) const;

 private:
  void load_layer(int64_t li, const std::string& file);
  // Loads layer li's attention weights onto opts.gpu when the plan put all of them there.
  void place_attention(int64_t li, const ModelOptions& opts);
  // out [N, d] = layer li's attention of x [N, d] (host memory), on the device that runs it;
  // feeds the new tokens to the caches.
  void attention(int64_t li, const StepLayout& lay, const float* x, float* out);
  // The whole attention sublayer of the streams X [N, hc, d] (host memory, updated in place):
  // mHC mixing, norm, attention, mHC update, on the device that holds the layer's attention
  // and its mixing (only the streams cross).
  void attention_sublayer(int64_t li, const StepLayout& lay, float* X);
  // The same with x, out, pos and the weights in `dev`'s memory, the ops run by the caller's
  // thread (the device's queue, for a device).
  void attention_on(Device& dev, int64_t li, const StepLayout& lay, const int64_t* pos, const float* x, float* out);

  const ModelConfig& c_;
  std::shared_ptr<Device> gpu_;  // first: outlives the device buffers of layers_
  Weights w_;
  ModelOptions opts_;
  WeightView embed_;
  OutputHead head_;
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
      gpu_(opts.gpu),
      w_(m.index),
      opts_(opts),
      rope_window_(v4_rope(m.config, false)),
      rope_compressed_(v4_rope(m.config, true)) {
  const ModelConfig& c = c_;
  const std::string file = m.index.path().string();
  if (c.head_dim <= c.qk_rope_head_dim || c.num_attention_heads % c.o_groups != 0)
    throw_error({file, "head_dim", -1}, "head_dim must exceed qk_rope_head_dim and o_groups divide the heads");
  embed_ = w_.matrix("embed.weight");
  head_ = make_output_head(w_.matrix(c.tie_word_embeddings ? "embed.weight" : "head.weight"), opts,
                           c.tie_word_embeddings);
  norm_ = w_.vector("norm.weight");
  hc_head_ = hc_weights(w_, "hc_head");
  hc_ = {c.hc_mult, c.hidden_size, c.hc_sinkhorn_iters, static_cast<float>(c.rms_norm_eps),
         static_cast<float>(c.hc_eps)};
  softmax_scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));
  context_ = effective_context(c, opts);
  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t li = 0; li < c.num_hidden_layers; ++li) {
    load_layer(li, file);
    place_attention(li, opts);
  }
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
  AttnWeights& A = L.host;
  A.wq_a = w_.matrix(p + "attn.wq_a.weight");
  L.q_norm = w_.vector(p + "attn.q_norm.weight");
  A.wq_b = w_.matrix(p + "attn.wq_b.weight");
  A.wkv = w_.matrix(p + "attn.wkv.weight");
  L.kv_norm = w_.vector(p + "attn.kv_norm.weight");
  A.wo_a = w_.matrix(p + "attn.wo_a.weight");
  A.wo_b = w_.matrix(p + "attn.wo_b.weight");
  L.ones.assign(static_cast<size_t>(c.head_dim), 1.0f);
  L.ratio = c.compress_ratio(li);
  L.rope = L.ratio > 0 ? &rope_compressed_ : &rope_window_;
  if (L.ratio == 4) {
    A.index_wq_b = w_.matrix(p + "attn.indexer.wq_b.weight");
    A.index_weights_proj = w_.matrix(p + "attn.indexer.weights_proj.weight");
    if (c.index_head_dim % kIndexQuantBlock != 0 || (c.index_head_dim & (c.index_head_dim - 1)) != 0)
      throw_error({file, "index_head_dim", -1}, "must be a power of two and a multiple of 32 (Hadamard, FP4 blocks)");
  }
  auto compressor = [&](const std::string& q, CompressorWeights& cw, CompressorVectors& cv) {
    cw.wkv = w_.matrix(q + "wkv.weight");
    cw.wgate = w_.matrix(q + "wgate.weight");
    cv.ape = w_.vector(q + "ape");
    cv.norm = w_.vector(q + "norm.weight");
    cw.ape = cv.ape.data();
    cw.norm = cv.norm.data();
  };
  if (L.ratio > 0) compressor(p + "attn.compressor.", A.compressor, L.compressor);
  if (L.ratio == 4) compressor(p + "attn.indexer.compressor.", A.index_compressor, L.index_compressor);
  A.sink = L.sink.data();
  A.q_norm = L.q_norm.data();
  A.kv_norm = L.kv_norm.data();
  A.ones = L.ones.data();
  A.attn_norm = L.attn_norm.data();
  A.hc = L.hc_attn;
}

void DeepseekV4::place_attention(int64_t li, const ModelOptions& opts) {
  Layer& L = layers_[static_cast<size_t>(li)];
  L.dev = host_device().get();
  L.dev_copies = attention_copies(opts, li);
  if (!L.dev_copies) return;
  DeviceCopies& copy = *L.dev_copies;
  AttnWeights D = L.host;
  for (WeightView* w : {&D.wq_a, &D.wq_b, &D.wkv, &D.wo_a, &D.wo_b, &D.index_wq_b, &D.index_weights_proj,
                        &D.compressor.wkv, &D.compressor.wgate, &D.index_compressor.wkv, &D.index_compressor.wgate})
    copy.matrix(*w);
  D.sink = copy.vector(L.sink);
  D.q_norm = copy.vector(L.q_norm);
  D.kv_norm = copy.vector(L.kv_norm);
  D.ones = copy.vector(L.ones);
  D.compressor.ape = copy.vector(L.compressor.ape);
  D.compressor.norm = copy.vector(L.compressor.norm);
  D.index_compressor.ape = copy.vector(L.index_compressor.ape);
  D.index_compressor.norm = copy.vector(L.index_compressor.norm);
  const std::string p = "layers." + std::to_string(li) + ".hc_attn_";
  if (tensors_on_gpu(opts, {p + "fn", p + "base", p + "scale"})) {
    D.attn_norm = copy.vector(L.attn_norm);
    D.hc = HcView(copy.vector(L.hc_attn.fn), copy.vector(L.hc_attn.base), copy.vector(L.hc_attn.scale));
  } else {
    D.attn_norm = nullptr;
    D.hc = {};
  }
  L.on_dev = D;
  L.dev = &copy.device();
}

void DeepseekV4::init_sequence(V4Sequence& s) const {
  const ModelConfig& c = c_;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t D = c.head_dim, rd = c.qk_rope_head_dim, ID = c.index_head_dim;
  const bool quant = opts_.act_quant;
  if (engram_) s.engram = engram_->new_state();
  if (!s.cache.empty()) {  // a reset: the rings, compressors and their reservations stay
    for (LayerCache& lc : s.cache) {
      if (lc.compressor) lc.compressor->reset();
      if (lc.index_compressor) lc.index_compressor->reset();
    }
    return;
  }
  s.cache.resize(layers_.size());
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& L = layers_[li];
    LayerCache& lc = s.cache[li];
    Device& dev = *L.dev;
    const AttnWeights& W = L.weights();
    // Positions past the sequence's own are never read: the window only reaches back to written rows.
    const uint64_t elem = opts_.kv_bf16 ? sizeof(uint16_t) : sizeof(float);
    lc.window = dev.alloc(static_cast<uint64_t>(c.sliding_window * D) * elem, "KV cache",
                          "the sliding-window cache of layer " + std::to_string(li));
    if (L.ratio <= 0) continue;
    lc.compressor = std::make_unique<Compressor>(
        dev, W.compressor, L.ratio, D, eps, L.rope,
        [D, rd, quant](const Ops& ops, float* row) {
          if (quant) ops.quant_rows(row, 1, D, D - rd, kKvQuantBlock, RowQuant::Fp8Pow2);
        },
        s.capacity(), opts_.kv_bf16);
    if (L.ratio == 4)
      lc.index_compressor = std::make_unique<Compressor>(
          dev, W.index_compressor, L.ratio, ID, eps, L.rope,
          [ID, quant](const Ops& ops, float* row) {
            ops.hadamard_rows(row, 1, ID);
            if (quant) ops.quant_rows(row, 1, ID, ID, kIndexQuantBlock, RowQuant::Fp4);
          },
          s.capacity(), opts_.kv_bf16);
  }
}

void DeepseekV4::attention(int64_t li, const StepLayout& lay, const float* x, float* out) {
  Device& dev = *layers_[static_cast<size_t>(li)].dev;
  const int64_t n = lay.size() * c_.hidden_size;
  run_on_device(dev, x, n, lay.pos, out, n, [&](const float* dx, const int64_t* pos, float* dout) {
    attention_on(dev, li, lay, pos, dx, dout);
  });
}

void DeepseekV4::attention_sublayer(int64_t li, const StepLayout& lay, float* X) {
  const Layer& L = layers_[static_cast<size_t>(li)];
  Device& dev = *L.dev;
  const int64_t N = lay.size(), d = c_.hidden_size, hc = c_.hc_mult, n = N * hc * d;
  const float eps = static_cast<float>(c_.rms_norm_eps);
  run_on_device(dev, X, n, lay.pos, X, n, [&](const float* dX, const int64_t* pos, float* dout) {
    const Ops& ops = dev.ops();
    const AttnWeights& W = L.weights();
    DeviceScratch mem(dev);
    float* u = mem.get(N * d);
    float* post = mem.get(N * hc);
    float* comb = mem.get(N * hc * hc);
    float* y = mem.get(N * d);
    ops.hc_pre(hc_, W.hc, dX, N, u, post, comb);
    ops.rms_norm(u, W.attn_norm, u, N, d, eps);
    attention_on(dev, li, lay, pos, u, y);
    if (dout != dX) ops.copy(dout, dX, static_cast<uint64_t>(n) * sizeof(float));
    ops.hc_post(hc_, y, post, comb, dout, N);
  });
}

void DeepseekV4::attention_on(Device& dev, int64_t li, const StepLayout& lay, const int64_t* pos, const float* x,
                              float* out) {
  const Ops& ops = dev.ops();
  const Layer& L = layers_[static_cast<size_t>(li)];
  const AttnWeights& W = L.weights();
  const int64_t H = c_.num_attention_heads, D = c_.head_dim, rd = c_.qk_rope_head_dim, win = c_.sliding_window;
  const int64_t G = c_.o_groups, R = c_.o_lora_rank, N = lay.size(), hidden = c_.hidden_size;
  const float eps = static_cast<float>(c_.rms_norm_eps);
  DeviceScratch mem(dev);

  float* qr = mem.get(N * c_.q_lora_rank);
  float* q = mem.get(N * H * D);
  float* kv = mem.get(N * D);
  ops.linear(W.wq_a, x, N, qr);
  ops.rms_norm(qr, W.q_norm, qr, N, c_.q_lora_rank, eps);
  ops.linear(W.wq_b, qr, N, q);
  ops.rms_norm(q, W.ones, q, N * H, D, eps);
  ops.linear(W.wkv, x, N, kv);
  ops.rms_norm(kv, W.kv_norm, kv, N, D, eps);
  ops.rope(*L.rope, false, q + D - rd, N, H, D, H * D, pos);
  ops.rope(*L.rope, false, kv + D - rd, N, 1, 0, D, pos);
  if (opts_.act_quant) ops.quant_rows(kv, N, D, D - rd, kKvQuantBlock, RowQuant::Fp8Pow2);
  // Compressed rows of blocks completed by these tokens exist before any of them attends (a
  // query only sees rows whose block ends at or before its own position).
  for (const Span& g : lay.spans) {
    LayerCache& lc = v4(g).cache[static_cast<size_t>(li)];
    if (lc.compressor) lc.compressor->append(x + g.off * hidden, g.n, g.pos0);
    if (lc.index_compressor) lc.index_compressor->append(x + g.off * hidden, g.n, g.pos0);
  }
  // The indexer's queries and head weights of every token (ratio-4 layers).
  const int64_t nh = c_.index_n_heads, hd = c_.index_head_dim, topk = c_.index_topk;
  float *iq = nullptr, *iw = nullptr;
  if (L.ratio == 4) {
    iq = mem.get(N * nh * hd);
    iw = mem.get(N * nh);
    ops.linear(W.index_wq_b, qr, N, iq);
    ops.linear(W.index_weights_proj, x, N, iw);
    ops.rope(*L.rope, false, iq + hd - rd, N, nh, hd, nh * hd, pos);
    ops.hadamard_rows(iq, N * nh, hd);
    if (opts_.act_quant) ops.quant_rows(iq, N * nh, hd, hd, kIndexQuantBlock, RowQuant::Fp4);
  }

  float* o = mem.get(N * H * D);
  // A bf16 cache (--cache-type-k bf16): this step's keys rounded into bf16 scratch first, so that
  // a query sees every key, its own step's too, as the cache holds it.
  const bool bf16 = opts_.kv_bf16;
  const uint64_t es = bf16 ? sizeof(uint16_t) : sizeof(float);
  const uint8_t* step_keys = reinterpret_cast<const uint8_t*>(kv);
  if (bf16) {
    uint16_t* kvb = mem.get<uint16_t>(N * D);
    ops.to_bf16(kvb, kv, N * D);
    step_keys = reinterpret_cast<const uint8_t*>(kvb);
  }
  // The keys of one query, gathered as pointers into the caches (the pointer array lives with
  // them on the device; it is built here and copied there).
  const int64_t max_keys = win + std::max<int64_t>(topk, context_);
  const void** keys_dev = mem.get<const void*>(max_keys);
  const ScratchLease<std::vector<const void*>> keys_lease;
  const ScratchLease<std::vector<int64_t>> picked_lease, count_lease;
  std::vector<const void*>& keys = *keys_lease;
  std::vector<int64_t>& picked = *picked_lease;
  std::vector<int64_t>& count = *count_lease;
  for (const Span& g : lay.spans) {
    LayerCache& lc = v4(g).cache[static_cast<size_t>(li)];
    uint8_t* ring = reinterpret_cast<uint8_t*>(lc.window.data());
    int64_t *dpicked = nullptr, *dcount = nullptr;
    if (L.ratio == 4) {
      dpicked = mem.get<int64_t>(g.n * topk);
      dcount = mem.get<int64_t>(g.n);
      const float wscale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd * nh)));
      const auto pick = [&](const auto* keys) {
        ops.index_pick(iq + g.off * nh * hd, iw + g.off * nh, keys, g.n, g.pos0, L.ratio, nh, hd, wscale,
                       topk, dpicked, dcount);
      };
      const Compressor& ic = *lc.index_compressor;
      if (ic.bf16_rows())
        pick(ic.row_bf16(0));
      else
        pick(ic.rows());
      picked.resize(static_cast<size_t>(g.n * topk));
      count.resize(static_cast<size_t>(g.n));
      dev.to_host(picked.data(), dpicked, picked.size() * sizeof(int64_t));
      dev.to_host(count.data(), dcount, count.size() * sizeof(int64_t));
    }
    // Window key of position p: from this step, or from the ring (the window reaches back at
    // most win-1 positions, all still in the ring).
    auto window_key = [&](int64_t p) -> const void* {
      return p >= g.pos0 ? step_keys + (g.off + p - g.pos0) * D * es : ring + (p % win) * D * es;
    };
    const Compressor* cmp = lc.compressor.get();
    auto compressed_key = [&](int64_t j) -> const void* {
      if (bf16) return cmp->row_bf16(j);
      return cmp->row(j);
    };
    for (int64_t t = 0; t < g.n; ++t) {
      const int64_t p_t = g.pos0 + t, row = g.off + t;
      keys.clear();
      for (int64_t p = std::max<int64_t>(0, p_t - win + 1); p <= p_t; ++p) keys.push_back(window_key(p));
      if (L.ratio == 4) {
        for (int64_t i = 0; i < count[static_cast<size_t>(t)]; ++i)
          keys.push_back(compressed_key(picked[static_cast<size_t>(t * topk + i)]));
      } else if (L.ratio > 0) {
        for (int64_t j = 0; j < (p_t + 1) / L.ratio; ++j) keys.push_back(compressed_key(j));
      }
      dev.to_device(keys_dev, keys.data(), keys.size() * sizeof(const void*));
      float* oh = o + row * H * D;
      const int64_t nk = static_cast<int64_t>(keys.size());
      if (bf16)
        ops.sink_attention(q + row * H * D, reinterpret_cast<const uint16_t* const*>(keys_dev), nk, W.sink, H,
                           D, softmax_scale_, oh);
      else
        ops.sink_attention(q + row * H * D, reinterpret_cast<const float* const*>(keys_dev), nk, W.sink, H, D,
                           softmax_scale_, oh);
      // Rotating by the negative angle undoes the query position's rotation.
      ops.rope_at(*L.rope, oh + D - rd, H, D, -p_t);
    }
    for (int64_t t = 0; t < g.n; ++t)
      ops.copy(ring + ((g.pos0 + t) % win) * D * es, step_keys + (g.off + t) * D * es,
               static_cast<uint64_t>(D) * es);
  }

  // Grouped low-rank output: group g's heads through rows [g·R, (g+1)·R) of wo_a.
  const int64_t group_in = H * D / G;
  float* low = mem.get(N * G * R);
  for (int64_t gi = 0; gi < G; ++gi)
    ops.linear_rows(W.wo_a, gi * R, R, o + gi * group_in, N, H * D, low + gi * R, G * R);
  ops.linear(W.wo_b, low, N, out);
}

void DeepseekV4::forward_step(std::span<const SequenceStep> steps, const ForwardOptions&) {
  const ScratchLease<StepLayout> lay_lease;  // reused: a warm decode step allocates nothing
  StepLayout& lay = *lay_lease;
  lay_out_steps(steps, c_.max_position_embeddings, lay);
  for (const Span& g : lay.spans) {
    auto* seq = dynamic_cast<V4Sequence*>(g.seq);
    if (!seq || seq->owner != this) throw Error("forward: a sequence made by another model");
  }
  const int64_t N = lay.size(), d = c_.hidden_size, hc = c_.hc_mult;
  if (N == 0) return;
  const Activity doing("a forward step of", N, "tokens");
  // Streams X [N, hc, d]: every stream starts as the token's embedding.
  const ScratchFloats X(static_cast<size_t>(N * hc * d));
  embed_tokens(embed_, lay, hc, X.data());
  const EngramBinding bind(engram_.get());
  if (engram_)
    for (const Span& g : lay.spans) {
      bind.to(&v4(g).engram);
      engram_->begin_step(steps[g.step].tokens);
    }
  const float eps = static_cast<float>(c_.rms_norm_eps);
  const Ops& host = host_device()->ops();
  const auto floats = [](int64_t n) { return static_cast<size_t>(n); };
  const ScratchFloats u(floats(N * d)), x(floats(N * d)), y(floats(N * d)), post(floats(N * hc)),
      comb(floats(N * hc * hc));
  auto sublayer = [&](const HcWeights& hw, const Buf& norm_w, auto&& body) {
    host.hc_pre(hc_, hw, X.data(), N, u.data(), post.data(), comb.data());
    host.rms_norm(u.data(), norm_w.data(), x.data(), N, d, eps);
    body();
    host.hc_post(hc_, y.data(), post.data(), comb.data(), X.data(), N);
  };
  for (int64_t li = 0; li < c_.num_hidden_layers; ++li) {
    const Layer& L = layers_[static_cast<size_t>(li)];
    // Engram adds to every stream before the attention sublayer.
    if (engram_ && engram_->is_layer(static_cast<int>(li)))
      for (const Span& g : lay.spans) {
        bind.to(&v4(g).engram);
        engram_->apply(static_cast<int>(li), X.data() + g.off * hc * d, g.n);
      }
    if (L.weights().hc.fn)
      attention_sublayer(li, lay, X.data());
    else
      sublayer(L.hc_attn, L.attn_norm, [&] { attention(li, lay, x.data(), y.data()); });
    sublayer(L.hc_ffn, L.ffn_norm, [&] { moe_->forward(li, x.data(), lay.tokens, y.data()); });
    if (opts_.check_finite_layers)
      for (const Span& g : lay.spans)
        check_finite_activations(X.data() + g.off * hc * d, g.n, hc * d, g.pos0, "layer", li);
  }
  for (const Span& g : lay.spans) v4(g).advance(g.n);
  for (const Span& g : lay.spans)
    check_finite_activations(X.data() + g.off * hc * d, g.n, hc * d, g.pos0, "the last layer");
  experts_->end_step();

  const ScratchLease<std::vector<int64_t>> rows_lease;
  std::vector<int64_t>& rows = *rows_lease;
  logit_rows(steps, lay, rows);
  const int64_t R = static_cast<int64_t>(rows.size());
  const ScratchFloats hs(floats(R * d));
  for (int64_t r = 0; r < R; ++r)
    host.hc_head(hc_, hc_head_, X.data() + rows[static_cast<size_t>(r)] * hc * d, u.data() + r * d);
  host.rms_norm(u.data(), norm_.data(), hs.data(), R, d, eps);
  head_logits(head_, hs.data(), R, steps, lay);
}

}  // namespace

std::unique_ptr<CausalLM> make_deepseek_v4(const ModelFiles& m, const ModelOptions& opts) {
  return std::make_unique<DeepseekV4>(m, opts);
}

}  // namespace strata
