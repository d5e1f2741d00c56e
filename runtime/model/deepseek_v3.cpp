#include "runtime/model/deepseek_v3.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "cpu-kernels/scratch.h"
#include "runtime/backend/host_layout.h"
#include "runtime/model/device_layer.h"
#include "runtime/common/activity.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"
#include "runtime/model/engram.h"
#include "runtime/model/engram_store.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/moe_block.h"
#include "runtime/model/router.h"
#include "runtime/model/step_batch.h"
#include "runtime/model/weights.h"

namespace strata {
namespace {

using Buf = std::vector<float>;

// Steps of at most this many tokens (decode, a few sequences) run a layer's attention as one
// device graph where the device makes them (Device::run_graph).
constexpr int64_t kGraphTokens = 8;

struct Indexer {
  Buf k_norm_w, k_norm_b;
};

// A layer's attention weights as the ops read them, in the memory of the device that runs the
// layer's attention (views into the files and the layer's norm vectors on the host).
struct AttnWeights {
  bool q_lora = false, has_indexer = false;
  WeightView wq, wq_a, wq_b, wkv_a, wo;
  MlaUp up;
  const float *attn_norm = nullptr, *q_norm = nullptr, *kv_norm = nullptr;
  WeightView ix_wq_b, ix_wk, ix_weights_proj;
  const float *ix_k_norm_w = nullptr, *ix_k_norm_b = nullptr;
};

struct Layer {
  Buf attn_norm, ffn_norm, q_norm, kv_norm;
  Indexer indexer;
  AttnWeights host;  // read by the CPU
  // Where the layer's attention runs: the host, or the GPU the plan put its tensors on (with
  // the weights copied there and the sequences' caches of this layer held there).
  Device* dev = nullptr;
  AttnWeights on_dev;
  std::unique_ptr<DeviceCopies> dev_copies;
  bool moe = false;
  Mlp dense;  // dense layers; MoE layers are the MoeBlock's
  // A dense layer's FFN on the GPU when the plan put it there (its copy and the copy's views).
  std::unique_ptr<DeviceCopies> dense_copies;
  Mlp dense_on_dev;
  const AttnWeights& weights() const { return dev->is_host() ? host : on_dev; }
};

// One layer's caches of one sequence, in the memory of the device running the layer's
// attention: [capacity, kv_lora], [capacity, rope], [capacity, index_head_dim] (V3.2).
struct LayerCache {
  DeviceBuffer latent, k_rope, index_k;
};

class DeepseekV3;

class V3Sequence final : public Sequence {
 public:
  V3Sequence(const DeepseekV3* owner, int64_t capacity, const ModelConfig& c, const std::vector<Layer>& layers,
             const Engram* engram, std::shared_ptr<Device> gpu, bool bf16)
      : Sequence(capacity), owner(owner), engram_src(engram), gpu(std::move(gpu)) {
    cache.resize(static_cast<size_t>(c.num_hidden_layers));
    const uint64_t kv_rows = static_cast<uint64_t>(capacity) * (bf16 ? sizeof(uint16_t) : sizeof(float));
    for (size_t li = 0; li < cache.size(); ++li) {
      Device& dev = *layers[li].dev;
      const std::string what = "the KV cache of layer " + std::to_string(li) + " (" + std::to_string(capacity) + " tokens)";
      cache[li].latent = dev.alloc(kv_rows * static_cast<uint64_t>(c.kv_lora_rank), "KV cache", what);
      cache[li].k_rope = dev.alloc(kv_rows * static_cast<uint64_t>(c.qk_rope_head_dim), "KV cache", what);
      if (c.arch == Arch::DeepseekV32)
        cache[li].index_k = dev.alloc(kv_rows * static_cast<uint64_t>(c.index_head_dim), "KV cache", what);
    }
    if (engram) this->engram = engram->new_state();
  }
  void reset() override {
    n_past_ = 0;  // the rows past n_past are written before they are read
    if (engram_src) engram = engram_src->new_state();
  }
  void advance(int64_t n) { n_past_ += n; }

  const DeepseekV3* owner;
  const Engram* engram_src;
  std::shared_ptr<Device> gpu;  // outlives the caches it holds
  std::vector<LayerCache> cache;
  Engram::State engram;
};

using Span = StepLayout::Span;
V3Sequence& v3(const Span& g) { return *static_cast<V3Sequence*>(g.seq); }

class DeepseekV3 final : public CausalLM {
 public:
  DeepseekV3(const ModelFiles& m, const ModelOptions& opts);
  const ModelConfig& config() const override { return c_; }
  int64_t context() const override { return context_; }
  std::unique_ptr<Sequence> new_sequence() const override {
    const Activity doing("reserving a sequence's KV cache for", context_, "tokens");
    return std::make_unique<V3Sequence>(this, context_, c_, layers_, engram_.get(), gpu_, opts_.kv_bf16);
  }
  void forward_step(std::span<const SequenceStep> steps, const ForwardOptions& opts) override;
  int64_t max_step_tokens() const override { return opts_.max_step_tokens; }
  RoutingStats routing_stats() const override { return moe_->stats(); }
  ScheduleStats schedule_stats() const override { return moe_->schedule(); }
  const ExpertSource& experts() const override { return *experts_; }
  const Engram* engram() const override { return engram_.get(); }
  std::vector<std::string> load_notes() const override { return notes_; }

 private:
  // --repack: the K-quant (Q2_K to Q6_K) matrices the CPU computes (attention projections but the MLA
  // up-projections, which attention reads per head and transposed; dense FFNs, shared experts,
  // the output head), those the plan put on the GPU left out, into the CPU's tiled layout.
  void repack_host_matrices(const ModelOptions& opts, std::vector<MoeLayerWeights>& moe_layers);
  // out [N, d] = layer li's attention of the residual h [N, d] (its norm included), on the
  // device that runs it (h and out in host memory); appends the new tokens to the caches.
  void attention(int64_t li, const StepLayout& lay, const float* h, MlaMode mode, float* out);
  // The same with h, out and the weights in `dev`'s memory, the ops run by the caller's thread
  // (the device's queue, for a device).
  void attention_on(Device& dev, int64_t li, const StepLayout& lay, const int64_t* pos, const float* h, MlaMode mode,
                    float* out);
  // Loads layer li's attention weights onto opts.gpu when the plan put all of them there.
  void place_attention(int64_t li, const ModelOptions& opts);

  const ModelConfig& c_;
  std::shared_ptr<Device> gpu_;  // first: outlives the device buffers of layers_
  Weights w_;
  WeightView embed_;
  OutputHead head_;
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
  HostRepacked repacked_;  // --repack: the DRAM the host views of repack_host_matrices point into
  std::vector<std::string> notes_;
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
    : c_(m.config), gpu_(opts.gpu), w_(m.index), rope_(rope_params(m.config)), index_rope_(rope_params(m.config)),
      opts_(opts) {
  const ModelConfig& c = c_;
  embed_ = w_.matrix("embed.weight");
  head_ = make_output_head(w_.matrix(c.tie_word_embeddings ? "embed.weight" : "head.weight"), opts,
                           c.tie_word_embeddings);
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
    AttnWeights& A = L.host;
    A.q_lora = c.q_lora_rank > 0;
    if (A.q_lora) {
      A.wq_a = w_.matrix(p + "attn.wq_a.weight");
      L.q_norm = w_.vector(p + "attn.q_norm.weight");
      A.wq_b = w_.matrix(p + "attn.wq_b.weight");
    } else {
      A.wq = w_.matrix(p + "attn.wq.weight");
    }
    A.wkv_a = w_.matrix(p + "attn.wkv_a.weight");
    L.kv_norm = w_.vector(p + "attn.kv_norm.weight");
    A.wo = w_.matrix(p + "attn.wo.weight");
    MlaUp& up = A.up;
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
      if (!A.q_lora)
        throw_error({m.index.path().string(), "q_lora_rank", -1}, "the V3.2 indexer needs a q LoRA latent");
      A.has_indexer = true;
      A.ix_wq_b = w_.matrix(p + "attn.indexer.wq_b.weight");
      A.ix_wk = w_.matrix(p + "attn.indexer.wk.weight");
      A.ix_weights_proj = w_.matrix(p + "attn.indexer.weights_proj.weight");
      L.indexer.k_norm_w = w_.vector(p + "attn.indexer.k_norm.weight");
      L.indexer.k_norm_b = w_.vector(p + "attn.indexer.k_norm.bias");
    }
    A.attn_norm = L.attn_norm.data();
    A.q_norm = L.q_norm.data();
    A.kv_norm = L.kv_norm.data();
    A.ix_k_norm_w = L.indexer.k_norm_w.data();
    A.ix_k_norm_b = L.indexer.k_norm_b.data();
    place_attention(li, opts);
    L.moe = c.is_moe_layer(li);
    if (!L.moe) {
      L.dense = {w_.matrix(p + "ffn.w1.weight"), w_.matrix(p + "ffn.w2.weight"), w_.matrix(p + "ffn.w3.weight")};
      if (tensors_on_gpu(opts, {p + "ffn.w1.weight", p + "ffn.w2.weight", p + "ffn.w3.weight"})) {
        L.dense_copies = std::make_unique<DeviceCopies>(*opts.gpu, "dense layers", "the FFN of layer " + std::to_string(li));
        L.dense_on_dev = L.dense;
        for (WeightView* w : {&L.dense_on_dev.w1, &L.dense_on_dev.w2, &L.dense_on_dev.w3}) L.dense_copies->matrix(*w);
      }
    }
  }
  std::vector<MoeLayerWeights> moe_layers;
  for (int64_t li = 0; li < c.num_hidden_layers; ++li)
    moe_layers.push_back(load_moe_layer(w_, c, li, m.index.path().string()));
  if (opts.repack) repack_host_matrices(opts, moe_layers);
  moe_ = std::make_unique<MoeBlock>(c, opts, std::move(moe_layers), *experts_);
}

void DeepseekV3::repack_host_matrices(const ModelOptions& opts, std::vector<MoeLayerWeights>& moe_layers) {
  std::vector<WeightView*> views;
  if (!head_.copies) views.push_back(&head_.w);  // tied: the embedding's gathers keep their own view
  for (size_t li = 0; li < layers_.size(); ++li) {
    Layer& L = layers_[li];
    if (!L.dev_copies)
      for (WeightView* w : {&L.host.wq, &L.host.wq_a, &L.host.wq_b, &L.host.wkv_a, &L.host.wo}) views.push_back(w);
    if (!L.moe && !L.dense_copies)
      for (WeightView* w : {&L.dense.w1, &L.dense.w2, &L.dense.w3}) views.push_back(w);
    MoeLayerWeights& M = moe_layers[li];
    if (M.has_shared && !tensors_on_gpu(opts, {M.shared_names[0], M.shared_names[1], M.shared_names[2]}))
      for (WeightView* w : {&M.shared.w1, &M.shared.w2, &M.shared.w3}) views.push_back(w);
  }
  repacked_ = repack_for_host(views, opts.host_memory, "--repack");
  if (repacked_.matrices() > 0)
    notes_.push_back("--repack: " + std::to_string(repacked_.matrices()) +
                     " K-quant (Q2_K to Q6_K) matrices of attention, dense and shared FFNs and the output head repacked into "
                     "16-row tiles (" + human_bytes(repacked_.bytes()) + ")");
}

void DeepseekV3::place_attention(int64_t li, const ModelOptions& opts) {
  Layer& L = layers_[static_cast<size_t>(li)];
  L.dev = host_device().get();
  L.dev_copies = attention_copies(opts, li);
  if (!L.dev_copies) return;
  DeviceCopies& copy = *L.dev_copies;
  AttnWeights D = L.host;
  for (WeightView* w : {&D.wq, &D.wq_a, &D.wq_b, &D.wkv_a, &D.wo, &D.up.kv_b, &D.up.k_b, &D.up.v_b, &D.ix_wq_b, &D.ix_wk,
                        &D.ix_weights_proj})
    copy.matrix(*w);
  D.attn_norm = copy.vector(L.attn_norm);
  D.q_norm = copy.vector(L.q_norm);
  D.kv_norm = copy.vector(L.kv_norm);
  D.ix_k_norm_w = copy.vector(L.indexer.k_norm_w);
  D.ix_k_norm_b = copy.vector(L.indexer.k_norm_b);
  L.on_dev = D;
  L.dev = &copy.device();
}

void DeepseekV3::attention(int64_t li, const StepLayout& lay, const float* h, MlaMode mode, float* out) {
  Device& dev = *layers_[static_cast<size_t>(li)].dev;
  const int64_t n = lay.size() * c_.hidden_size;
  run_on_device(dev, h, n, lay.pos, out, n, [&](const float* dh, const int64_t* pos, float* dout) {
    // A decode step's attention is only device work (kernels, copies within the device): one
    // graph per layer where the device makes graphs (its shape repeats from token to token).
    if (lay.size() <= kGraphTokens)
      dev.run_graph(li, [&] { attention_on(dev, li, lay, pos, dh, mode, dout); });
    else
      attention_on(dev, li, lay, pos, dh, mode, dout);
  });
}

void DeepseekV3::attention_on(Device& dev, int64_t li, const StepLayout& lay, const int64_t* pos, const float* h,
                              MlaMode mode_opt, float* out) {
  const Ops& ops = dev.ops();
  const AttnWeights& W = layers_[static_cast<size_t>(li)].weights();
  const int64_t H = c_.num_attention_heads, dn = c_.qk_nope_head_dim, dr = c_.qk_rope_head_dim, dv = c_.v_head_dim,
                dl = c_.kv_lora_rank, dq = dn + dr, N = lay.size(), d = c_.hidden_size;
  const float eps = static_cast<float>(c_.rms_norm_eps);
  DeviceScratch mem(dev);
  float* x = mem.get(N * d);
  ops.rms_norm(h, W.attn_norm, x, N, d, eps);

  // Queries of every token of the step.
  float* q = mem.get(N * H * dq);
  float* q_latent = nullptr;
  if (W.q_lora) {
    q_latent = mem.get(N * c_.q_lora_rank);
    ops.linear(W.wq_a, x, N, q_latent);
    ops.rms_norm(q_latent, W.q_norm, q_latent, N, c_.q_lora_rank, eps);
    ops.linear(W.wq_b, q_latent, N, q);
  } else {
    ops.linear(W.wq, x, N, q);
  }
  ops.rope(rope_, false, q + dn, N, H, dq, H * dq, pos);

  // Latent and rope key of the new tokens, written into each sequence's cache at its positions.
  float* kv = mem.get(N * (dl + dr));
  ops.linear(W.wkv_a, x, N, kv);
  // A bf16 cache (--cache-type-k bf16): the rows made in f32 scratch, then rounded into it.
  const bool bf16 = opts_.kv_bf16;
  float* lat_f32 = bf16 ? mem.get(N * dl) : nullptr;
  float* kr_f32 = bf16 ? mem.get(N * dr) : nullptr;
  for (const Span& g : lay.spans) {
    LayerCache& lc = v3(g).cache[static_cast<size_t>(li)];
    float* lat = bf16 ? lat_f32 + g.off * dl : reinterpret_cast<float*>(lc.latent.data()) + g.pos0 * dl;
    float* kr = bf16 ? kr_f32 + g.off * dr : reinterpret_cast<float*>(lc.k_rope.data()) + g.pos0 * dr;
    for (int64_t t = 0; t < g.n; ++t) {
      ops.copy(lat + t * dl, kv + (g.off + t) * (dl + dr), static_cast<uint64_t>(dl) * sizeof(float));
      ops.copy(kr + t * dr, kv + (g.off + t) * (dl + dr) + dl, static_cast<uint64_t>(dr) * sizeof(float));
    }
    ops.rms_norm(lat, W.kv_norm, lat, g.n, dl, eps);
    ops.rope(rope_, false, kr, g.n, 1, 0, dr, pos + g.off);
    if (bf16) {
      ops.to_bf16(reinterpret_cast<uint16_t*>(lc.latent.data()) + g.pos0 * dl, lat, g.n * dl);
      ops.to_bf16(reinterpret_cast<uint16_t*>(lc.k_rope.data()) + g.pos0 * dr, kr, g.n * dr);
    }
  }

  // The V3.2 indexer's queries, keys and head weights of every token.
  const int64_t nh = c_.index_n_heads, hd = c_.index_head_dim;
  float *iq = nullptr, *ik = nullptr, *iw = nullptr;
  if (W.has_indexer) {
    const int64_t block = std::min<int64_t>(128, hd);
    iq = mem.get(N * nh * hd);
    ik = mem.get(N * hd);
    iw = mem.get(N * nh);
    ops.linear(W.ix_wq_b, q_latent, N, iq);
    ops.linear(W.ix_wk, x, N, ik);
    ops.layer_norm(ik, W.ix_k_norm_w, W.ix_k_norm_b, ik, N, hd, 1e-6f);
    ops.linear(W.ix_weights_proj, x, N, iw);
    ops.scale(iw, N * nh, static_cast<float>(1.0 / std::sqrt(static_cast<double>(nh * hd))));
    ops.rope(index_rope_, true, iq, N, nh, hd, nh * hd, pos);
    const RowQuant fp8 = index_pow2_scale_ ? RowQuant::Fp8Pow2 : RowQuant::Fp8;
    ops.hadamard_rows(iq, N * nh, hd);
    ops.quant_rows(iq, N * nh, hd, hd, block, fp8);
    ops.rope(index_rope_, true, ik, N, 1, 0, hd, pos);
    ops.hadamard_rows(ik, N, hd);
    ops.quant_rows(ik, N, hd, hd, block, fp8);
  }

  float* heads_out = mem.get(N * H * dv);
  const MlaShape shape{H, dn, dr, dv, dl, softmax_scale_};
  for (const Span& g : lay.spans) {
    LayerCache& lc = v3(g).cache[static_cast<size_t>(li)];
    const int64_t n_ctx = g.pos0 + g.n;
    uint8_t* allowed = nullptr;
    if (W.has_indexer) {
      allowed = mem.get<uint8_t>(g.n * n_ctx);
      const auto choose = [&](const auto* keys) {
        ops.index_topk(iq + g.off * nh * hd, iw + g.off * nh, keys, g.n, g.pos0, nh, hd, c_.index_topk,
                       allowed);
      };
      if (bf16) {  // the keys rounded to bf16 as they are written, as the latent rows
        uint16_t* keys = reinterpret_cast<uint16_t*>(lc.index_k.data());
        ops.to_bf16(keys + g.pos0 * hd, ik + g.off * hd, g.n * hd);
        choose(keys);
      } else {
        float* keys = reinterpret_cast<float*>(lc.index_k.data());
        ops.copy(keys + g.pos0 * hd, ik + g.off * hd, static_cast<uint64_t>(g.n * hd) * sizeof(float));
        choose(keys);
      }
    }
    // Auto: the absorbed form for one token, and for a batch whose tokens the indexer lets see
    // fewer than half of the keys before them (each then scores only its own); else decompressed.
    auto sparse = [&] {
      int64_t seen = 0, before = 0;
      for (int64_t t = 0; t < g.n; ++t) {
        seen += std::min<int64_t>(c_.index_topk, g.pos0 + t + 1);
        before += g.pos0 + t + 1;
      }
      return 2 * seen < before;
    };
    const MlaMode mode = mode_opt != MlaMode::Auto           ? mode_opt
                         : g.n == 1 || (allowed && sparse()) ? MlaMode::Absorbed
                                                             : MlaMode::Decompressed;
    if (bf16)
      ops.mla_attention(shape, W.up, q + g.off * H * dq, g.n, g.pos0, reinterpret_cast<const uint16_t*>(lc.latent.data()),
                        reinterpret_cast<const uint16_t*>(lc.k_rope.data()), allowed, mode == MlaMode::Absorbed,
                        heads_out + g.off * H * dv);
    else
      ops.mla_attention(shape, W.up, q + g.off * H * dq, g.n, g.pos0, reinterpret_cast<const float*>(lc.latent.data()),
                        reinterpret_cast<const float*>(lc.k_rope.data()), allowed, mode == MlaMode::Absorbed,
                        heads_out + g.off * H * dv);
  }
  ops.linear(W.wo, heads_out, N, out);
}

void DeepseekV3::forward_step(std::span<const SequenceStep> steps, const ForwardOptions& opts) {
  const ScratchLease<StepLayout> lay_lease;  // reused: a warm decode step allocates nothing
  StepLayout& lay = *lay_lease;
  lay_out_steps(steps, c_.max_position_embeddings, lay);
  for (const Span& g : lay.spans) {
    auto* seq = dynamic_cast<V3Sequence*>(g.seq);
    if (!seq || seq->owner != this) throw Error("forward: a sequence made by another model");
  }
  const int64_t N = lay.size(), d = c_.hidden_size;
  if (N == 0) return;
  const Activity doing("a forward step of", N, "tokens");
  const ScratchFloats h(static_cast<size_t>(N * d));
  embed_tokens(embed_, lay, 1, h.data());
  // Engram state is per sequence: bound around each sequence's calls, unbound on any exit.
  const EngramBinding bind(engram_.get());
  if (engram_)
    for (const Span& g : lay.spans) {
      bind.to(&v3(g).engram);
      engram_->begin_step(steps[g.step].tokens);
    }
  const float eps = static_cast<float>(c_.rms_norm_eps);
  const Ops& host = host_device()->ops();
  const ScratchFloats x(static_cast<size_t>(N * d)), y(static_cast<size_t>(N * d));
  for (int64_t li = 0; li < c_.num_hidden_layers; ++li) {
    const Layer& L = layers_[static_cast<size_t>(li)];
    if (engram_ && engram_->is_layer(static_cast<int>(li)))
      for (const Span& g : lay.spans) {
        bind.to(&v3(g).engram);
        engram_->apply(static_cast<int>(li), h.data() + g.off * d, g.n);
      }
    attention(li, lay, h.data(), opts.mla, y.data());
    for (int64_t i = 0; i < N * d; ++i) h[i] += y[i];
    host.rms_norm(h.data(), L.ffn_norm.data(), x.data(), N, d, eps);
    if (L.moe) moe_->forward(li, x.data(), lay.tokens, y.data());
    else if (!L.dense_copies) host.mlp(L.dense, x.data(), N, y.data(), 0);
    else {
      Device& dev = L.dense_copies->device();
      run_on_device(dev, x.data(), N * d, lay.pos, y.data(), N * d,
                    [&](const float* dx, const int64_t*, float* dy) { dev.ops().mlp(L.dense_on_dev, dx, N, dy, 0); });
    }
    for (int64_t i = 0; i < N * d; ++i) h[i] += y[i];
    if (opts_.check_finite_layers)
      for (const Span& g : lay.spans) check_finite_activations(h.data() + g.off * d, g.n, d, g.pos0, "layer", li);
  }
  for (const Span& g : lay.spans) v3(g).advance(g.n);
  for (const Span& g : lay.spans) check_finite_activations(h.data() + g.off * d, g.n, d, g.pos0, "the last layer");
  experts_->end_step();

  const ScratchLease<std::vector<int64_t>> rows_lease;
  std::vector<int64_t>& rows = *rows_lease;
  logit_rows(steps, lay, rows);
  const ScratchFloats hs(rows.size() * static_cast<size_t>(d));
  for (size_t r = 0; r < rows.size(); ++r)
    host.rms_norm(h.data() + rows[r] * d, norm_.data(), hs.data() + static_cast<int64_t>(r) * d, 1, d, eps);
  head_logits(head_, hs.data(), static_cast<int64_t>(rows.size()), steps, lay);
}

}  // namespace

std::unique_ptr<CausalLM> make_deepseek_v3(const ModelFiles& m, const ModelOptions& opts) {
  return std::make_unique<DeepseekV3>(m, opts);
}

}  // namespace strata
