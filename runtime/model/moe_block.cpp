#include "runtime/model/moe_block.h"

#include <algorithm>

#include "cpu-kernels/scratch.h"
#include "runtime/common/error.h"
#include "runtime/model/expert_source.h"
#include "runtime/model/weights.h"

namespace strata {

MoeLayerWeights load_moe_layer(const Weights& w, const ModelConfig& c, int64_t li, const std::string& file) {
  MoeLayerWeights L;
  L.moe = c.is_moe_layer(li);
  if (!L.moe) return L;
  const std::string p = "layers." + std::to_string(li) + ".";
  L.gate = w.matrix(p + "ffn.gate.weight");
  if (c.is_hash_layer(li)) {
    const std::string name = p + "ffn.gate.tid2eid";
    const std::vector<float> table = w.vector(name);
    if (static_cast<int64_t>(table.size()) != c.vocab_size * c.num_experts_per_tok)
      throw_error({file, name, -1}, "expected [vocab_size, num_experts_per_tok] expert ids");
    L.tid2eid.resize(table.size());
    for (size_t i = 0; i < table.size(); ++i) {
      if (!(table[i] >= 0 && table[i] < static_cast<float>(c.n_routed_experts)))
        throw_error({file, name, static_cast<int64_t>(i)},
                    "expert id " + std::to_string(table[i]) + " outside [0, n_routed_experts)");
      L.tid2eid[i] = static_cast<int32_t>(table[i]);
    }
    // A token's row names distinct experts (an expert twice would be computed twice and weigh
    // double).
    const int64_t k = c.num_experts_per_tok;
    for (int64_t tok = 0; tok < c.vocab_size; ++tok)
      for (int64_t a = 0; a < k; ++a)
        for (int64_t b = a + 1; b < k; ++b)
          if (L.tid2eid[static_cast<size_t>(tok * k + a)] == L.tid2eid[static_cast<size_t>(tok * k + b)])
            throw_error({file, name, tok * k + b},
                        "token " + std::to_string(tok) + "'s row names expert " +
                            std::to_string(L.tid2eid[static_cast<size_t>(tok * k + b)]) + " twice");
  } else if (w.has(p + "ffn.gate.bias")) {
    L.gate_bias = w.vector(p + "ffn.gate.bias");
  }
  L.has_shared = c.n_shared_experts > 0;
  if (L.has_shared) {
    for (int k = 0; k < 3; ++k) L.shared_names[k] = p + "ffn.shared_experts.w" + std::to_string(k + 1) + ".weight";
    L.shared = {w.matrix(L.shared_names[0]), w.matrix(L.shared_names[1]), w.matrix(L.shared_names[2])};
  }
  return L;
}

MoeBlock::MoeBlock(const ModelConfig& c, const ModelOptions& opts, std::vector<MoeLayerWeights> layers,
                   ExpertSource& experts)
    : c_(c),
      router_(router_params(c, opts)),
      min_expert_weight_(opts.min_expert_weight),
      swiglu_limit_(static_cast<float>(c.swiglu_limit)),
      layers_(std::move(layers)),
      experts_(experts) {
  shared_on_gpu_.resize(layers_.size());
  if (!opts.gpu) return;
  auto on_gpu = [&](const std::string& name) {
    const auto it = opts.tensor_placement.find(name);
    return it != opts.tensor_placement.end() && it->second == Tier::Gpu;
  };
  for (size_t li = 0; li < layers_.size(); ++li) {
    const MoeLayerWeights& L = layers_[li];
    if (!L.moe || !L.has_shared || !on_gpu(L.shared_names[0]) || !on_gpu(L.shared_names[1]) ||
        !on_gpu(L.shared_names[2]))
      continue;
    gpu_ = opts.gpu;
    shared_on_gpu_[li] = std::make_unique<DeviceMlp>(
        upload_mlp(*gpu_, L.shared, "shared experts", "the shared expert of layer " + std::to_string(li)));
  }
}

int64_t MoeBlock::route(int64_t li, const float* x, std::span<const int32_t> tokens, std::vector<float>& logits,
                        std::vector<int32_t>& ids, std::vector<float>& wts) const {
  const MoeLayerWeights& L = layers_[static_cast<size_t>(li)];
  const int64_t n = static_cast<int64_t>(tokens.size()), ne = c_.n_routed_experts;
  const bool hash = !L.tid2eid.empty();
  RouterParams rp = router_;
  if (hash) rp.top_k = c_.num_experts_per_tok;  // the table's experts, whatever --experts-per-token says
  const int64_t k = rp.top_k;
  logits.assign(static_cast<size_t>(n * ne), 0.0f);
  ids.assign(static_cast<size_t>(n * k), 0);
  wts.assign(static_cast<size_t>(n * k), 0.0f);
  const Ops& ops = host_device()->ops();
  ops.linear(L.gate, x, n, logits.data());
  const ScratchLease<std::vector<int32_t>> fixed_lease;
  std::vector<int32_t>& fixed = *fixed_lease;  // the table's experts of each token (hash layers)
  fixed.clear();
  if (hash)
    for (int64_t t = 0; t < n; ++t)
      fixed.insert(fixed.end(), L.tid2eid.begin() + static_cast<int64_t>(tokens[static_cast<size_t>(t)]) * k,
                   L.tid2eid.begin() + (static_cast<int64_t>(tokens[static_cast<size_t>(t)]) + 1) * k);
  ops.route(rp, logits.data(), L.gate_bias.empty() ? nullptr : L.gate_bias.data(), hash ? fixed.data() : nullptr, n,
            ids.data(), wts.data());
  return k;
}

void MoeBlock::forward(int64_t li, const float* x, std::span<const int32_t> tokens, float* out) {
  const MoeLayerWeights& L = layers_[static_cast<size_t>(li)];
  const int64_t n = static_cast<int64_t>(tokens.size()), d = c_.hidden_size;
  // Reused from layer to layer and step to step: a warm decode step allocates nothing here.
  const ScratchLease<std::vector<float>> logits_lease, wts_lease;
  const ScratchLease<std::vector<int32_t>> ids_lease;
  std::vector<float>& logits = *logits_lease;
  std::vector<float>& wts = *wts_lease;
  std::vector<int32_t>& ids = *ids_lease;
  const int64_t k = route(li, x, tokens, logits, ids, wts);
  stats_.routed += n * k;
  for (int64_t t = 0; t < n; ++t) stats_.skipped += drop_small_experts(wts.data() + t * k, k, min_expert_weight_);

  // Guess the next layer's experts (exactly, from the token ids, on a hash layer; else its gate
  // on this layer's hidden state): their reads start while this layer's experts compute.
  if (experts_.wants_prediction() && li + 1 < c_.num_hidden_layers && is_moe(li + 1)) {
    const ScratchLease<std::vector<int32_t>> guess_lease;
    const ScratchLease<std::vector<float>> gw_lease;
    route(li + 1, x, tokens, logits, *guess_lease, *gw_lease);
    std::vector<int32_t>& guess = *guess_lease;
    experts_.predict(static_cast<int>(li + 1), guess);
  }
  std::fill(out, out + n * d, 0.0f);
  const ScratchLease<ExpertSource::RoutedBatch> batch_lease;
  ExpertSource::RoutedBatch& batch = *batch_lease;
  experts_.prepare(static_cast<int>(li), x, n, d, ids.data(), wts.data(), k, batch);
  // The device's share first: it runs while the CPU computes its own. Its work reads x and
  // batch and writes out: every exit waits for it first.
  Event shared_done, routed_done;
  auto settle = [&] {
    shared_done.settle();
    routed_done.settle();
  };
  const Ops& host = host_device()->ops();
  double t0 = 0, t1 = 0;
  try {
    if (const DeviceMlp* s = shared_on_gpu_[static_cast<size_t>(li)].get()) {
      const uint64_t bytes = static_cast<uint64_t>(n * d) * sizeof(float);
      shared_done = gpu_->submit([this, s, x, n, d, out, bytes] {
        DeviceScratch mem(*gpu_);  // the step workspace, on the device's queue
        float* dx = mem.get(n * d);
        float* dy = mem.get(n * d);
        gpu_->to_device(dx, x, bytes);
        gpu_->ops().mlp(s->mlp, dx, n, dy, swiglu_limit_);
        gpu_->to_host(out, dy, bytes);  // out is the CPU's again only after the wait below
      });
    }
    routed_done = experts_.submit_device(batch, swiglu_limit_);
    t0 = steady_seconds();
    if (L.has_shared && !shared_on_gpu_[static_cast<size_t>(li)]) host.mlp(L.shared, x, n, out, swiglu_limit_);
    experts_.compute_host(batch, swiglu_limit_);
    t1 = steady_seconds();
  } catch (...) {
    settle();
    throw;
  }
  settle();
  shared_done.wait();  // rethrows what the device's work threw
  routed_done.wait();
  schedule_.wait_s += steady_seconds() - t1;
  schedule_.add(t0, t1, {&shared_done, &routed_done});
  ExpertSource::combine(batch, out);
}

}  // namespace strata
