#include "runtime/model/step_batch.h"

#include <algorithm>
#include <string>

#include "runtime/backend/device.h"
#include "runtime/common/error.h"

namespace strata {

StepLayout lay_out_steps(std::span<const SequenceStep> steps, int64_t max_positions) {
  check_steps(steps, max_positions);
  StepLayout lay;
  for (size_t i = 0; i < steps.size(); ++i) {
    const SequenceStep& st = steps[i];
    const int64_t n = static_cast<int64_t>(st.tokens.size());
    if (n == 0) {
      st.logits->clear();
      continue;
    }
    const int64_t p0 = st.seq->n_past();
    lay.spans.push_back({i, st.seq, lay.size(), n, p0});
    lay.tokens.insert(lay.tokens.end(), st.tokens.begin(), st.tokens.end());
    for (int64_t t = 0; t < n; ++t) lay.pos.push_back(p0 + t);
  }
  return lay;
}

void embed_tokens(const WeightView& embed, const StepLayout& lay, int64_t streams, float* out) {
  const int64_t d = embed.cols;
  for (int64_t t = 0; t < lay.size(); ++t) {
    const int32_t id = lay.tokens[static_cast<size_t>(t)];
    if (id < 0 || id >= embed.rows)
      throw Error("token id " + std::to_string(id) + " at position " + std::to_string(lay.pos[static_cast<size_t>(t)]) +
                  " is outside the vocabulary [0, " + std::to_string(embed.rows) + ")");
    float* row = out + t * streams * d;
    host_device()->ops().gather_rows(embed, &id, 1, row);
    for (int64_t i = 1; i < streams; ++i) std::copy_n(row, d, row + i * d);
  }
}

std::vector<int64_t> logit_rows(std::span<const SequenceStep> steps, const StepLayout& lay) {
  std::vector<int64_t> rows;
  for (const StepLayout::Span& s : lay.spans)
    for (int64_t t = steps[s.step].all_logits ? 0 : s.n - 1; t < s.n; ++t) rows.push_back(s.off + t);
  return rows;
}

void head_logits(const WeightView& head, const std::vector<float>& hs, std::span<const SequenceStep> steps,
                 const StepLayout& lay) {
  const int64_t V = head.rows, d = head.cols;
  const int64_t R = static_cast<int64_t>(hs.size()) / d;
  std::vector<float> all(static_cast<size_t>(R * V));
  host_device()->ops().linear(head, hs.data(), R, all.data());
  int64_t r = 0;
  for (const StepLayout::Span& s : lay.spans) {
    const SequenceStep& st = steps[s.step];
    const int64_t rows = st.all_logits ? s.n : 1;
    const float* src = all.data() + r * V;
    st.logits->assign(src, src + rows * V);
    check_finite_activations(st.logits->data(), rows, V, s.pos0 + s.n - rows, "the output head");
    r += rows;
  }
}

}  // namespace strata
