#include "runtime/generate/generate.h"

#include <chrono>

#include "runtime/generate/stop_text.h"

namespace strata {

GenerateResult generate(CausalLM& lm, Sequence& seq, const Tokenizer& tok, const VocabMask& mask,
                        std::span<const int32_t> prompt, const GenerationParams& params,
                        const std::function<bool(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  Sampler sampler(params.sampling);
  StreamDecoder decoder(tok);
  StopText stop(params.stop);
  std::vector<float> logits;
  const auto t0 = clock::now();
  const SequenceStep first{&seq, prompt, &logits, false};
  lm.forward_batch({&first, 1});
  const auto t1 = clock::now();
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  bool go_on = true;
  for (;;) {
    if (r.generated >= params.max_tokens) {
      r.finish_reason = "length";
      break;
    }
    mask.apply(logits);
    const int32_t next = sampler.next(logits);
    ++r.generated;
    r.pending = next;
    if (next == tok.eos_id() && !params.ignore_eos) {
      r.finish_reason = "stop";
      r.eos = true;
      break;
    }
    go_on = on_text(stop.push(decoder.push(next)));
    if (stop.stopped()) {
      r.finish_reason = "stop";
      break;
    }
    if (!go_on) {
      r.finish_reason = "interrupted";
      break;
    }
    if (r.generated >= params.max_tokens) {
      r.finish_reason = "length";
      break;
    }
    if (seq.n_past() + 1 > seq.capacity()) {
      r.finish_reason = "context";
      break;
    }
    const int32_t one[1] = {next};
    const SequenceStep s{&seq, one, &logits, false};
    lm.forward_batch({&s, 1});
    r.pending = -1;
  }
  if (go_on && !stop.stopped()) on_text(stop.push(decoder.flush()) + stop.flush());
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace strata
