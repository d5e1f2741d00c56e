// The shared edges of a batched forward step over several sequences (runtime/model/causal_lm.h
// SequenceStep): laying the sequences' tokens out as one batch, the embedding gather, the LM
// head with its logits handed back per sequence, and binding per-sequence Engram state.
// Every architecture's forward_batch composes these; only attention differs per sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cpu-kernels/weight_view.h"
#include "runtime/model/causal_lm.h"
#include "runtime/model/device_layer.h"
#include "runtime/model/engram.h"

namespace strata {

// A step's tokens in one batch: span i covers rows [off, off + n) of the batch, the new
// tokens of steps[step], at positions pos0 .. pos0 + n - 1 of its sequence.
struct StepLayout {
  struct Span {
    size_t step;
    Sequence* seq;
    int64_t off, n, pos0;
  };
  std::vector<Span> spans;     // steps with at least one token, in order
  std::vector<int32_t> tokens;  // [N]
  std::vector<int64_t> pos;     // [N] position of each token in its sequence
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

// Checks the steps (check_steps) and lays them out into lay (its vectors reused); the logits
// of steps without tokens are cleared.
void lay_out_steps(std::span<const SequenceStep> steps, int64_t max_positions, StepLayout& lay);

// out [N, streams, d]: each token's embedding row, copied into every stream. strata::Error
// naming the id and position for a token outside the embedding's rows.
void embed_tokens(const WeightView& embed, const StepLayout& lay, int64_t streams, float* out);

// The batch rows whose logits the steps ask for (every row of an all_logits step, else its
// last), into rows.
void logit_rows(std::span<const SequenceStep> steps, const StepLayout& lay, std::vector<int64_t>& rows);

// The output head: its weights on the host, and a copy on the GPU device when the plan put
// "head.weight" there (not a head tied to the embedding), whose products then run there in
// pieces of kDeviceHeadRows rows (runtime/model/device_workspace.h).
struct OutputHead {
  WeightView w;
  std::unique_ptr<DeviceCopies> copies;  // null: the CPU computes it
  WeightView on_dev;
};
OutputHead make_output_head(const WeightView& w, const ModelOptions& opts, bool tied);

// logits = head · hs for the rows logit_rows gave (hs [n_rows, d], already normalized), handed
// to each step's logits vector; non-finite logits throw (check_finite_activations).
void head_logits(const OutputHead& head, const float* hs, int64_t n_rows, std::span<const SequenceStep> steps,
                 const StepLayout& lay);

// Binds an Engram to one sequence's state at a time; the Engram's own state again when it ends.
class EngramBinding {
 public:
  explicit EngramBinding(Engram* e) : e_(e) {}
  ~EngramBinding() {
    if (e_) e_->bind(nullptr);
  }
  EngramBinding(const EngramBinding&) = delete;
  EngramBinding& operator=(const EngramBinding&) = delete;
  void to(Engram::State* s) const {
    if (e_) e_->bind(s);
  }

 private:
  Engram* e_;
};

}  // namespace strata
