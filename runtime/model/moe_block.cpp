#include "runtime/model/moe_block.h"

#include <algorithm>

#include "cpu-kernels/linear.h"
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
  if (L.has_shared)
    L.shared = {w.matrix(p + "ffn.shared_experts.w1.weight"), w.matrix(p + "ffn.shared_experts.w2.weight"),
                w.matrix(p + "ffn.shared_experts.w3.weight")};
  return L;
}

MoeBlock::MoeBlock(const ModelConfig& c, const ModelOptions& opts, std::vector<MoeLayerWeights> layers,
                   ExpertSource& experts)
    : c_(c),
      router_(RouterParams::from_config(c, opts)),
      min_expert_weight_(opts.min_expert_weight),
      swiglu_limit_(static_cast<float>(c.swiglu_limit)),
      layers_(std::move(layers)),
      experts_(experts) {}

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
  linear(L.gate, x, n, logits.data());
  for (int64_t t = 0; t < n; ++t) {
    if (hash) {
      std::copy_n(L.tid2eid.data() + static_cast<int64_t>(tokens[static_cast<size_t>(t)]) * k, k, ids.data() + t * k);
      route_token_fixed(rp, logits.data() + t * ne, ids.data() + t * k, wts.data() + t * k);
    } else {
      route_token(rp, logits.data() + t * ne, L.gate_bias.empty() ? nullptr : L.gate_bias.data(), ids.data() + t * k,
                  wts.data() + t * k);
    }
  }
  return k;
}

void MoeBlock::forward(int64_t li, const float* x, std::span<const int32_t> tokens, float* out) {
  const MoeLayerWeights& L = layers_[static_cast<size_t>(li)];
  const int64_t n = static_cast<int64_t>(tokens.size()), d = c_.hidden_size;
  std::vector<float> logits, wts;
  std::vector<int32_t> ids;
  const int64_t k = route(li, x, tokens, logits, ids, wts);
  stats_.routed += n * k;
  for (int64_t t = 0; t < n; ++t) stats_.skipped += drop_small_experts(wts.data() + t * k, k, min_expert_weight_);

  // Guess the next layer's experts (exactly, from the token ids, on a hash layer; else its gate
  // on this layer's hidden state): their reads start while this layer's experts compute.
  if (experts_.wants_prediction() && li + 1 < c_.num_hidden_layers && is_moe(li + 1)) {
    std::vector<int32_t> guess;
    std::vector<float> gw;
    route(li + 1, x, tokens, logits, guess, gw);
    experts_.predict(static_cast<int>(li + 1), guess);
  }
  std::fill(out, out + n * d, 0.0f);
  if (L.has_shared) mlp_forward(L.shared, x, n, out, swiglu_limit_);
  experts_.add_routed(static_cast<int>(li), x, n, d, ids.data(), wts.data(), k, out, swiglu_limit_);
}

}  // namespace strata
