#include "runtime/model/expert_source.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "cpu-kernels/compute_arena.h"
#include "cpu-kernels/scratch.h"
#include "runtime/common/error.h"
#include "runtime/common/units.h"
#include "runtime/backend/device_weights.h"
#include "runtime/backend/host_layout.h"

namespace strata {

ExpertSource::ExpertSource(int n_layers, int n_experts)
    : counts_(static_cast<size_t>(n_layers), std::vector<int64_t>(static_cast<size_t>(n_experts), 0)),
      tokens_(static_cast<size_t>(n_layers), 0),
      guess_(static_cast<size_t>(n_layers)) {}

void ExpertSource::predict(int layer, std::span<const int32_t> ids) {
  std::vector<int32_t>& g = guess_.at(static_cast<size_t>(layer));
  g.assign(ids.begin(), ids.end());
  std::sort(g.begin(), g.end());
  g.erase(std::unique(g.begin(), g.end()), g.end());
}

void ExpertSource::prepare(int layer, const float* x, int64_t n, int64_t d, const int32_t* ids, const float* wts,
                           int64_t top_k, RoutedBatch& b) {
  std::vector<int64_t>& count = counts_.at(static_cast<size_t>(layer));
  if (by_expert_.size() < count.size()) by_expert_.resize(count.size());
  for (auto& v : by_expert_) v.clear();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < top_k; ++j)
      if (wts[t * top_k + j] != 0) by_expert_.at(static_cast<size_t>(ids[t * top_k + j])).push_back({t, wts[t * top_k + j]});
  tokens_[static_cast<size_t>(layer)] += n;
  b.layer = layer;
  b.d = d;
  b.used.clear();
  b.on_device.clear();
  for (size_t e = 0; e < count.size(); ++e)
    if (!by_expert_[e].empty()) {
      const size_t u = b.used.size();
      b.used.push_back(static_cast<int32_t>(e));
      count[e] += static_cast<int64_t>(by_expert_[e].size());
      if (b.tokens.size() <= u) b.tokens.resize(u + 1);
      b.tokens[u].assign(by_expert_[e].begin(), by_expert_[e].end());
    }
  if (std::vector<int32_t>& g = guess_[static_cast<size_t>(layer)]; !g.empty()) {
    int64_t hit = 0;  // |g ∩ used|, both ascending
    for (size_t i = 0, j = 0; i < g.size() && j < b.used.size();) {
      if (g[i] < b.used[j]) ++i;
      else if (b.used[j] < g[i]) ++j;
      else ++hit, ++i, ++j;
    }
    prediction_.guessed += static_cast<int64_t>(g.size());
    prediction_.correct += hit;
    prediction_.used += static_cast<int64_t>(b.used.size());
    g.clear();
  }
  host_used_.clear();
  b.streamed.clear();
  b.device_share.assign(b.used.size(), 0);
  for (size_t u = 0; u < b.used.size(); ++u) {
    if (on_device(layer, b.used[u])) {
      b.on_device.push_back(u);
      b.device_share[u] = 1;
      continue;
    }
    host_used_.push_back(b.used[u]);  // read (or found) in DRAM, also when the device computes it
    if (offload_min_ > 0 && static_cast<int64_t>(b.tokens[u].size()) >= offload_min_) {
      const Mlp& m = shape_of(layer, b.used[u]);
      // Only when the device has room for the copy: a full device computes the expert on the
      // host as before, never fails. The copies go through two slots of the step workspace
      // (run_offloaded) beside one expert's rows in and out and its MLP's gate and up rows.
      const uint64_t n = b.tokens[u].size();
      const uint64_t need = 2 * staged_bytes(m) + 6 * Device::kWorkspaceAlign +
                            2 * n * static_cast<uint64_t>(d + m.w1.rows) * sizeof(float);
      const uint64_t reserved = device_->workspace_reserved(), used = device_->used(), cap = device_->capacity();
      const bool room = reserved ? need <= reserved : used <= cap && cap - used >= need + need / 4;
      if (room && device_->computes(m.w1.type) && device_->computes(m.w2.type) && device_->computes(m.w3.type)) {
        b.streamed.push_back(u);
        b.device_share[u] = 1;
      }
    }
  }
  will_use(layer, host_used_);
  for (size_t l = static_cast<size_t>(layer) + 1; l < guess_.size(); ++l) {
    if (guess_[l].empty()) continue;
    read_.clear();  // the device's experts need no read
    for (int32_t e : guess_[l])
      if (!on_device(static_cast<int>(l), e)) read_.push_back(e);
    prefetch_guess(static_cast<int>(l), read_);
  }
  // Each used expert's tokens gathered; its outputs go to ys (summed by combine).
  b.x = x;
  if (b.xs.size() < b.used.size()) b.xs.resize(b.used.size());
  if (b.ys.size() < b.used.size()) b.ys.resize(b.used.size());
  if (b.rows.size() < b.used.size()) b.rows.resize(b.used.size());
  for (size_t u = 0; u < b.used.size(); ++u) {
    const auto& toks = b.tokens[u];
    const int64_t m = static_cast<int64_t>(toks.size());
    b.xs[u].resize(static_cast<size_t>(m * d));
    b.ys[u].assign(static_cast<size_t>(m * d), 0.0f);
    b.rows[u].resize(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      std::copy_n(x + toks[i].first * d, d, b.xs[u].data() + i * d);
      b.rows[u][static_cast<size_t>(i)] = static_cast<int32_t>(toks[i].first);
    }
  }
}

void ExpertSource::enable_offload(std::shared_ptr<Device> dev, int64_t min_tokens) {
  if (!dev || min_tokens <= 0) return;
  if (!device_) device_ = std::move(dev);
  offload_min_ = min_tokens;
}

Event ExpertSource::submit_device(RoutedBatch& b, float swiglu_limit) {
  if (b.on_device.empty() && b.streamed.empty()) return {};
  Device* dev = device();
  for (size_t u : b.on_device) device_bytes_used_ += mlp_bytes(*on_device(b.layer, b.used[u]));
  for (size_t u : b.streamed) device_bytes_used_ += mlp_bytes(shape_of(b.layer, b.used[u]));
  return dev->submit([this, &b, dev, swiglu_limit] {
    // Expert u's tokens in, its MLP (weights given by `mlp`) on the device, its outputs back;
    // one expert's activations at a time in the step workspace.
    auto run = [&](size_t u, auto&& mlp) {
      const int64_t len = static_cast<int64_t>(b.xs[u].size());
      DeviceScratch io(*dev);
      float* dx = io.get(len);
      float* dy = io.get(len);
      dev->to_device(dx, b.xs[u].data(), len * sizeof(float));
      mlp([&](const Mlp& m) { dev->ops().mlp(m, dx, static_cast<int64_t>(b.tokens[u].size()), dy, swiglu_limit); });
      dev->to_host(b.ys[u].data(), dy, len * sizeof(float));
    };
    for (size_t u : b.on_device) run(u, [&](auto&& compute) { compute(*on_device(b.layer, b.used[u])); });
    if (!b.streamed.empty()) run_offloaded(b, dev, run);
  });
}

uint64_t ExpertSource::staged_bytes(const Mlp& m) {
  uint64_t n = 0;
  for (const WeightView* w : {&m.w1, &m.w2, &m.w3}) {
    n += Device::workspace_round(static_cast<uint64_t>(weight_data_bytes(*w)));
    if (w->scale) n += Device::workspace_round(static_cast<uint64_t>(weight_scale_bytes(*w)));
  }
  return n;
}

template <typename Run>
void ExpertSource::run_offloaded(RoutedBatch& b, Device* dev, Run& run) {
  // Prefill offload, double-buffered: expert k's weights go into slot k % 2 of the step
  // workspace on the device's copy lane while expert k - 1 computes from the other slot. Expert
  // k's host bytes stay pinned (with_expert) until its copy has landed; slot k % 2 was last read
  // by expert k - 2, whose outputs came back before expert k - 1's callback ended.
  uint64_t slot_bytes = 0;
  for (size_t u : b.streamed) slot_bytes = std::max(slot_bytes, staged_bytes(shape_of(b.layer, b.used[u])));
  DeviceScratch slots(*dev);
  uint8_t* slot[2] = {slots.get<uint8_t>(static_cast<int64_t>(slot_bytes)),
                      slots.get<uint8_t>(static_cast<int64_t>(slot_bytes))};
  Mlp staged[2];
  Device::LaneCopy landed;
  try {
    auto compute = [&](size_t k) {
      const size_t u = b.streamed[k];
      run(u, [&](auto&& mlp) { mlp(staged[k % 2]); });
      offloaded_bytes_ += mlp_bytes(staged[k % 2]);
      ++offloaded_experts_;
    };
    for (size_t k = 0; k < b.streamed.size(); ++k) {
      with_expert(b.layer, b.used[b.streamed[k]], [&](const Mlp& host) {
        Mlp m = host;
        uint8_t* at = slot[k % 2];
        auto stage = [&](const void* src, int64_t bytes) {
          landed = dev->copy_in_async(at, src, static_cast<uint64_t>(bytes));
          void* dst = at;
          at += Device::workspace_round(static_cast<uint64_t>(bytes));
          return dst;
        };
        for (WeightView* w : {&m.w1, &m.w2, &m.w3}) {
          const int64_t data = weight_data_bytes(*w), scale = w->scale ? weight_scale_bytes(*w) : 0;
          w->data = static_cast<const uint8_t*>(stage(w->data, data));
          if (w->scale) w->scale = static_cast<const uint8_t*>(stage(w->scale, scale));
        }
        staged[k % 2] = m;
        if (k > 0) compute(k - 1);  // while expert k's weights cross
        landed.wait();              // the lane is in order: every piece of expert k is in
      });
    }
    compute(b.streamed.size() - 1);
  } catch (...) {
    landed.settle();  // no copy may still write into the slots once they go
    throw;
  }
}

void ExpertSource::compute_host(RoutedBatch& b, float swiglu_limit) {
  std::vector<size_t>& host = host_;
  host.clear();
  for (size_t u = 0; u < b.used.size(); ++u)
    if (!b.device_share[u]) host.push_back(u);
  const Ops& ops = host_device()->ops();
  std::vector<MlpJob>& jobs = jobs_;
  jobs.clear();
  for (size_t u : host)
    if (const Mlp* mlp = resident(b.layer, b.used[u]))
      jobs.push_back({mlp, b.xs[u].data(), static_cast<int64_t>(b.tokens[u].size()), b.ys[u].data(),
                      expert_home_node(b.used[u]), b.x, b.rows[u].data()});
  if (jobs.size() == host.size()) return ops.mlp_batch(jobs, swiglu_limit);
  for (size_t u : host) {
    const int64_t m = static_cast<int64_t>(b.tokens[u].size());
    with_expert(b.layer, b.used[u], [&](const Mlp& mlp) {
      const MlpJob job{&mlp, b.xs[u].data(), m, b.ys[u].data(), expert_home_node(b.used[u])};
      ops.mlp_batch({&job, 1}, swiglu_limit);
    });
  }
}

void ExpertSource::combine(const RoutedBatch& b, float* out) {
  const int64_t d = b.d;
  for (size_t u = 0; u < b.used.size(); ++u) {
    const auto& toks = b.tokens[u];
    for (size_t i = 0; i < toks.size(); ++i)
      for (int64_t j = 0; j < d; ++j)
        out[toks[i].first * d + j] += toks[i].second * b.ys[u][i * static_cast<size_t>(d) + static_cast<size_t>(j)];
  }
}

void ExpertSource::add_routed(int layer, const float* x, int64_t n, int64_t d, const int32_t* ids, const float* wts,
                              int64_t top_k, float* out, float swiglu_limit) {
  const ScratchLease<RoutedBatch> lease;
  RoutedBatch& b = *lease;
  prepare(layer, x, n, d, ids, wts, top_k, b);
  const Event dev = submit_device(b, swiglu_limit);
  try {
    compute_host(b, swiglu_limit);
  } catch (...) {
    dev.settle();  // the device's work reads b: let it finish before b goes
    throw;
  }
  dev.wait();
  combine(b, out);
}

namespace {

class MappedExperts final : public ExpertSource {
 public:
  MappedExperts(const ModelConfig& c, const Weights& w, const ModelOptions& opts)
      : ExpertSource(static_cast<int>(c.num_hidden_layers), c.n_routed_experts) {
    experts_.resize(static_cast<size_t>(c.num_hidden_layers));
    for (int li = 0; li < c.num_hidden_layers; ++li) {
      if (!c.is_moe_layer(li)) continue;
      for (int e = 0; e < c.n_routed_experts; ++e)
        experts_[static_cast<size_t>(li)].push_back({w.expert(li, e, "w1"), w.expert(li, e, "w2"), w.expert(li, e, "w3")});
    }
    if (opts.repack) {
      std::vector<Mlp*> all;
      for (auto& layer : experts_)
        for (Mlp& m : layer) all.push_back(&m);
      repacked_ = repack_for_host(all, opts.host_memory, "--repack");
      repack_asked_ = true;
    }
  }
  std::string describe() const override {
    std::string d = "read in place from the memory-mapped files";
    if (repacked_.matrices() > 0)
      d = std::to_string(repacked_.matrices()) + " K-quant (Q2_K to Q6_K) matrices repacked into 16-row tiles in DRAM (" +
          human_bytes(repacked_.bytes()) + "), the rest " + d;
    else if (repack_asked_)
      d += " (--repack: no K-quant (Q2_K to Q6_K) matrix of whole 16-row tiles to repack)";
    return d;
  }

 protected:
  const Mlp* resident(int layer, int e) const override {
    return &experts_.at(static_cast<size_t>(layer)).at(static_cast<size_t>(e));
  }
  void will_use(int, std::span<const int32_t>) override {}
  void with_expert(int layer, int e, FunctionRef<void(const Mlp&)> fn) override {
    fn(experts_.at(static_cast<size_t>(layer)).at(static_cast<size_t>(e)));
  }
  const Mlp& shape_of(int layer, int e) const override { return *resident(layer, e); }

 private:
  std::vector<std::vector<Mlp>> experts_;
  HostRepacked repacked_;  // the repacked matrices' DRAM (--repack), which their views point into
  bool repack_asked_ = false;
};

class StoredExperts final : public ExpertSource {
 public:
  StoredExperts(const ModelConfig& c, const Weights& w, const ModelOptions& opts)
      : ExpertSource(static_cast<int>(c.num_hidden_layers), c.n_routed_experts) {
    const WeightIndex& index = w.index();
    std::vector<StoreItem> items;
    item_of_.resize(static_cast<size_t>(c.num_hidden_layers));
    for (int li = 0; li < c.num_hidden_layers; ++li) {
      if (!c.is_moe_layer(li)) continue;
      for (int e = 0; e < c.n_routed_experts; ++e) {
        item_of_[static_cast<size_t>(li)].push_back(static_cast<uint32_t>(items.size()));
        StoreItem item;
        item.name = "layers." + std::to_string(li) + ".ffn.experts." + std::to_string(e);
        item.numa_node = compute_node_os_index(expert_home_node(e));  // -1 without a NUMA split
        Layout lay;
        WeightView* views[3] = {&lay.mlp.w1, &lay.mlp.w2, &lay.mlp.w3};
        const char* names[3] = {"w1", "w2", "w3"};
        for (int k = 0; k < 3; ++k) {
          *views[k] = w.expert(li, e, names[k]);  // checks the tensor and its scales
          const TensorEntry& t = index.expert(li, e, names[k]);
          lay.data_range[k] = item.ranges.size();
          item.ranges.push_back({t.file, t.offset, t.nbytes});
          if (!t.scale.empty()) {
            const TensorEntry& s = index.at(t.scale);
            lay.scale_range[k] = item.ranges.size();
            item.ranges.push_back({s.file, s.offset, s.nbytes});
          }
        }
        layouts_.push_back(lay);
        items.push_back(std::move(item));
      }
    }
    std::vector<std::filesystem::path> files;
    for (const IndexedFile& f : index.files()) files.push_back(f.path);
    // Which items the placement fixes in DRAM, and the cache the others need.
    std::vector<uint32_t> fixed;
    std::vector<std::pair<int, int>> held_gpu;
    uint64_t streamed = 0;
    for (size_t li = 0; li < item_of_.size(); ++li)
      for (size_t e = 0; e < item_of_[li].size(); ++e) {
        const auto it = opts.expert_placement.find({static_cast<int>(li), static_cast<int>(e)});
        const Tier t = it != opts.expert_placement.end() ? it->second : Tier::Nvme;
        if (t == Tier::Gpu && opts.gpu) {
          held_gpu.push_back({static_cast<int>(li), static_cast<int>(e)});
        } else if (t != Tier::Nvme) {
          fixed.push_back(item_of_[li][e]);  // DRAM, and GPU-tier experts without a GPU
        } else {
          ++streamed;
        }
      }
    ExpertStoreOptions so;
    so.budget_bytes = opts.expert_cache_bytes;
    so.io.force_pread = opts.expert_io_pread;
    so.io.fault = opts.expert_io_fault;
    so.memory = opts.host_memory;
    if (streamed == 0) {  // nothing is cached: no budget to hold the items to
      so.budget_bytes = UINT64_MAX;
    } else if (so.budget_bytes == 0) {
      throw Error("the placement leaves " + std::to_string(streamed) +
                  " experts on NVMe but gives them no DRAM cache (--expert-cache-mb)");
    }
    store_ = std::make_unique<ExpertStore>(files, std::move(items), so);
    store_->fix(fixed, opts.load_progress);
    if (opts.repack) {  // the fixed experts' bytes are theirs for good: repacked where they lie
      std::vector<Mlp*> mlps;
      std::vector<std::array<uint8_t*, 3>> at;
      for (uint32_t i : fixed) {
        Layout& lay = layouts_[i];
        mlps.push_back(&lay.mlp);
        at.push_back({store_->fixed_data(i, lay.data_range[0]), store_->fixed_data(i, lay.data_range[1]),
                      store_->fixed_data(i, lay.data_range[2])});
      }
      repacked_ = repack_in_place_for_host(mlps, at);
      repack_asked_ = true;
    }
    n_fixed_ = fixed.size();
    n_streamed_ = streamed;
    // The GPU tier's experts copied to the device's memory (one read of each from the files).
    if (!held_gpu.empty()) {
      device_ = opts.gpu;
      on_gpu_.resize(item_of_.size());
      for (const auto& [li, e] : held_gpu) {
        auto& layer = on_gpu_[static_cast<size_t>(li)];
        if (layer.empty()) layer.resize(item_of_[static_cast<size_t>(li)].size());
        const std::string what = "routed expert " + std::to_string(e) + " of layer " + std::to_string(li);
        layer[static_cast<size_t>(e)] = std::make_unique<DeviceMlp>(
            upload_mlp(*device_, layouts_[item_of_[static_cast<size_t>(li)][static_cast<size_t>(e)]].mlp,
                       "routed experts", what));
        gpu_bytes_ += mlp_bytes(layer[static_cast<size_t>(e)]->mlp);
      }
    }
  }
  int device_experts() const override {
    int n = 0;
    for (const auto& l : on_gpu_)
      for (const auto& e : l) n += e != nullptr;
    return n;
  }

  void end_step() override { store_->tick(); }
  bool wants_prediction() const override { return true; }
  std::optional<ExpertStoreStats> store_stats() const override { return store_->stats(); }
  std::string describe() const override {
    std::string d;
    if (const int g = device_experts(); g > 0)
      d = std::to_string(g) + " experts on " + device_->name() + " (" + human_bytes(gpu_bytes_) + "), ";
    if (n_fixed_ > 0)
      d += std::to_string(n_fixed_) + " experts fixed in DRAM (" + human_bytes(store_->stats().fixed_bytes) + "), ";
    if (n_streamed_ > 0)
      d += std::to_string(n_streamed_) + " read on use through a DRAM cache of " + human_bytes(store_->budget()) + ", ";
    if (repacked_.matrices > 0)
      d += "their " + std::to_string(repacked_.matrices) + " Q2_K / Q4_K / Q5_K matrices repacked into 16-row tiles in place (" +
           human_bytes(repacked_.bytes) + "; the cache's stay as stored), ";
    else if (repack_asked_)
      d += "--repack: no Q2_K / Q4_K / Q5_K matrix of whole 16-row tiles fixed in DRAM (the cache's stay as stored), ";
    return d + store_->backend();
  }

 protected:
  const Mlp* on_device(int layer, int e) const override {
    if (static_cast<size_t>(layer) >= on_gpu_.size()) return nullptr;
    const auto& l = on_gpu_[static_cast<size_t>(layer)];
    return static_cast<size_t>(e) < l.size() && l[static_cast<size_t>(e)] ? &l[static_cast<size_t>(e)]->mlp : nullptr;
  }
  void will_use(int layer, std::span<const int32_t> experts) override {
    items_.clear();
    for (int32_t e : experts) items_.push_back(item_of_.at(static_cast<size_t>(layer)).at(static_cast<size_t>(e)));
    store_->prefetch(items_);
  }
  void prefetch_guess(int layer, std::span<const int32_t> experts) override { will_use(layer, experts); }
  const Mlp& shape_of(int layer, int e) const override {
    return layouts_[item_of_.at(static_cast<size_t>(layer)).at(static_cast<size_t>(e))].mlp;
  }
  void with_expert(int layer, int e, FunctionRef<void(const Mlp&)> fn) override {
    const uint32_t item = item_of_.at(static_cast<size_t>(layer)).at(static_cast<size_t>(e));
    const ExpertStore::Pin pin = store_->acquire(item);
    const Layout& lay = layouts_[item];
    Mlp m = lay.mlp;
    WeightView* views[3] = {&m.w1, &m.w2, &m.w3};
    for (int k = 0; k < 3; ++k) {
      views[k]->data = pin.data(lay.data_range[k]);
      if (views[k]->scale) views[k]->scale = pin.data(lay.scale_range[k]);
    }
    fn(m);
  }

 private:
  // An expert's views as checked at load, and which of its item's ranges each points into.
  struct Layout {
    Mlp mlp;
    size_t data_range[3] = {0, 0, 0}, scale_range[3] = {0, 0, 0};
  };
  std::vector<std::vector<uint32_t>> item_of_;  // [layer][expert] -> store item
  std::vector<uint32_t> items_;                 // will_use's, reused
  std::vector<Layout> layouts_;                 // per store item
  std::unique_ptr<ExpertStore> store_;
  size_t n_fixed_ = 0, n_streamed_ = 0;
  RepackedCount repacked_;  // the fixed experts' matrices repacked in place (--repack)
  bool repack_asked_ = false;
  std::vector<std::vector<std::unique_ptr<DeviceMlp>>> on_gpu_;  // [layer][expert], null: not held
  uint64_t gpu_bytes_ = 0;
};

}  // namespace

std::unique_ptr<ExpertSource> make_expert_source(const ModelFiles& m, const Weights& w, const ModelOptions& opts) {
  std::unique_ptr<ExpertSource> src;
  if (opts.expert_cache_bytes == 0 && opts.expert_placement.empty()) src = std::make_unique<MappedExperts>(m.config, w, opts);
  else src = std::make_unique<StoredExperts>(m.config, w, opts);
  src->enable_offload(opts.gpu, opts.offload_batch);
  return src;
}

}  // namespace strata
