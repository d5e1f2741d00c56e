#include "runtime/model/step_batch.h"

#include <algorithm>
#include <string>

#include "cpu-kernels/scratch.h"
#include "runtime/backend/device.h"
#include "runtime/common/error.h"
#include "runtime/model/device_workspace.h"

namespace strata {

void lay_out_steps(std::span<const SequenceStep> steps, int64_t max_positions, StepLayout& lay) {
  check_steps(steps, max_positions);
  lay.spans.clear();
  lay.tokens.clear();
  lay.pos.clear();
  for (size_t i = 0; i < steps.size(); ++i) {
    const SequenceStep& st = steps[i];
    const int64_t n = static_cast<int64_t>(st.tokens.size());
    if (n == 0) {
      if (!st.no_logits) st.logits->clear();
      continue;
    }
    const int64_t p0 = st.seq->n_past();
    lay.spans.push_back({i, st.seq, lay.size(), n, p0});
    lay.tokens.insert(lay.tokens.end(), st.tokens.begin(), st.tokens.end());
    for (int64_t t = 0; t < n; ++t) lay.pos.push_back(p0 + t);
  }
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

void logit_rows(std::span<const SequenceStep> steps, const StepLayout& lay, std::vector<int64_t>& rows) {
  rows.clear();
  for (const StepLayout::Span& s : lay.spans)
    if (!steps[s.step].no_logits)
      for (int64_t t = steps[s.step].all_logits ? 0 : s.n - 1; t < s.n; ++t) rows.push_back(s.off + t);
}

OutputHead make_output_head(const WeightView& w, const ModelOptions& opts, bool tied) {
  OutputHead h;
  h.w = w;
  if (tied || !tensors_on_gpu(opts, {"head.weight"})) return h;
  h.copies = std::make_unique<DeviceCopies>(*opts.gpu, "head", "the output head");
  h.on_dev = w;
  h.copies->matrix(h.on_dev);
  return h;
}

void head_logits(const OutputHead& head, const float* hs, int64_t R, std::span<const SequenceStep> steps,
                 const StepLayout& lay) {
  if (R == 0) return;  // every step a piece that asks for none
  const int64_t V = head.w.rows, d = head.w.cols;
  const ScratchFloats all(static_cast<size_t>(R * V));
  if (!head.copies) {
    host_device()->ops().linear(head.w, hs, R, all.data());
  } else {
    Device& dev = head.copies->device();
    static const std::vector<int64_t> no_pos;
    for (int64_t r0 = 0; r0 < R; r0 += kDeviceHeadRows) {
      const int64_t n = std::min(kDeviceHeadRows, R - r0);
      run_on_device(dev, hs + r0 * d, n * d, no_pos, all.data() + r0 * V, n * V,
                    [&](const float* dx, const int64_t*, float* dout) { dev.ops().linear(head.on_dev, dx, n, dout); });
    }
  }
  int64_t r = 0;
  for (const StepLayout::Span& s : lay.spans) {
    const SequenceStep& st = steps[s.step];
    if (st.no_logits) continue;
    const int64_t rows = st.all_logits ? s.n : 1;
    const float* src = all.data() + r * V;
    st.logits->assign(src, src + rows * V);
    check_finite_activations(st.logits->data(), rows, V, s.pos0 + s.n - rows, "the output head");
    r += rows;
  }
}

}  // namespace strata
