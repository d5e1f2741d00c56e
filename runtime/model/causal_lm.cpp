#include "runtime/model/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/backend/device.h"
#include "runtime/backend/schedule_stats.h"
#include "runtime/common/error.h"
#include "runtime/model/device_workspace.h"
#include "runtime/model/plan_items.h"

#include "runtime/model/deepseek_v3.h"
#include "runtime/model/deepseek_v4.h"

namespace strata {

ScheduleStats CausalLM::schedule_stats() const { return {}; }

void check_context(int64_t n_past, int64_t n, int64_t max_positions) {
  if (n_past + n > max_positions)
    throw Error("the sequence would reach " + std::to_string(n_past + n) + " tokens (" + std::to_string(n_past) +
                " in the cache + " + std::to_string(n) + " new), past the model's context of " +
                std::to_string(max_positions) + " (max_position_embeddings)");
}

int64_t effective_context(const ModelConfig& c, const ModelOptions& o) {
  const int64_t want = o.context > 0 ? o.context : kDefaultContext;
  return std::max<int64_t>(1, std::min(want, c.max_position_embeddings));
}

void CausalLM::forward(std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits,
                       const ForwardOptions& opts) {
  if (!own_) own_ = new_sequence();
  const SequenceStep step{own_.get(), tokens, &logits, all_logits};
  forward_batch({&step, 1}, opts);
}

void CausalLM::forward_batch(std::span<const SequenceStep> steps, const ForwardOptions& opts) {
  const int64_t cap = max_step_tokens();
  int64_t total = 0;
  for (const SequenceStep& s : steps) total += static_cast<int64_t>(s.tokens.size());
  if (cap <= 0 || total <= cap) return forward_step(steps, opts);
  // Pieces of at most `cap` tokens, in order: a step's tokens may span several, its sequence
  // advancing piece by piece; only the piece that ends a step asks for its last logits, and
  // an all-logits step's rows are gathered piece by piece.
  check_steps(steps, config().max_position_embeddings);  // refused whole, before any piece runs
  std::vector<SequenceStep> piece;
  std::vector<size_t> owner;  // the step each entry of the piece is part of
  std::vector<std::vector<float>> rows(steps.size());
  for (const SequenceStep& s : steps)
    if (s.all_logits) s.logits->clear();
  size_t i = 0, off = 0;
  while (i < steps.size()) {
    piece.clear();
    owner.clear();
    int64_t room = cap;
    while (i < steps.size() && (room > 0 || steps[i].tokens.size() == off)) {
      const SequenceStep& s = steps[i];
      const size_t take = std::min(s.tokens.size() - off, static_cast<size_t>(room));
      SequenceStep p = s;
      p.tokens = s.tokens.subspan(off, take);
      const bool last = off + take == s.tokens.size();
      if (s.all_logits) p.logits = &rows[i];
      else p.no_logits = s.no_logits || !last;
      piece.push_back(p);
      owner.push_back(i);
      room -= static_cast<int64_t>(take);
      off += take;
      if (last) ++i, off = 0;
    }
    forward_step(piece, opts);
    for (size_t k = 0; k < piece.size(); ++k) {
      const SequenceStep& s = steps[owner[k]];
      if (s.all_logits) s.logits->insert(s.logits->end(), rows[owner[k]].begin(), rows[owner[k]].end());
    }
  }
}

void check_steps(std::span<const SequenceStep> steps, int64_t max_positions) {
  for (size_t i = 0; i < steps.size(); ++i) {
    const SequenceStep& s = steps[i];
    if (!s.seq || (!s.logits && !s.no_logits))
      throw Error("forward: step " + std::to_string(i) + " has no sequence or logits");
    for (size_t j = 0; j < i; ++j)
      if (steps[j].seq == s.seq) throw Error("forward: one sequence appears twice in a batched step");
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    check_context(s.seq->n_past(), n, max_positions);
    if (s.seq->n_past() + n > s.seq->capacity())
      throw Error("the sequence would reach " + std::to_string(s.seq->n_past() + n) + " tokens (" +
                  std::to_string(s.seq->n_past()) + " in the cache + " + std::to_string(n) +
                  " new), past its context of " + std::to_string(s.seq->capacity()) +
                  " (--ctx-size; the model allows " + std::to_string(max_positions) + ")");
  }
}

void check_finite_activations(const float* v, int64_t n_tokens, int64_t width, int64_t first_position,
                              const char* after, int64_t layer) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < width; ++i) {
      const float x = v[t * width + i];
      if (std::isfinite(x)) continue;
      const std::string where = layer >= 0 ? "layer " + std::to_string(layer) : std::string(after);
      throw Error("non-finite activation (" + std::string(std::isnan(x) ? "NaN" : "infinity") + ") after " + where +
                  " at position " + std::to_string(first_position + t) + ", element " + std::to_string(i) +
                  ": a weight or scale holding NaN/inf, or a config value far out of range, made it; "
                  "--check-finite names the first layer that does");
    }
}

void reserve_step_workspace(const ModelFiles& m, const ModelOptions& opts) {
  Device* dev = opts.gpu.get();
  if (!dev || dev->is_host() || dev->workspace_reserved() > 0 || dev->capacity() == 0 || opts.gpu_workspace_bytes == 0)
    return;
  uint64_t bytes = static_cast<uint64_t>(opts.gpu_workspace_bytes);
  if (opts.gpu_workspace_bytes < 0) {
    const uint64_t offload = opts.offload_batch > 0 ? largest_expert_bytes(plan_input_from_model(m)) : 0;
    bytes = device_step_workspace(m.config, {opts.max_step_tokens, effective_context(m.config, opts), offload});
  }
  // A device too small for it (a plan that could put nothing there) keeps none: its work,
  // prefill offload, takes scratch as it goes, only where it finds room.
  if (bytes > dev->capacity() - std::min(dev->capacity(), dev->used())) return;
  dev->reserve_workspace(bytes);
}

std::unique_ptr<CausalLM> load_causal_lm(const ModelFiles& m, const ModelOptions& opts) {
  reserve_step_workspace(m, opts);
  switch (m.config.arch) {
    case Arch::DeepseekV3:
    case Arch::DeepseekV32: return make_deepseek_v3(m, opts);
    case Arch::DeepseekV4: return make_deepseek_v4(m, opts);
  }
  return nullptr;
}

}  // namespace strata
