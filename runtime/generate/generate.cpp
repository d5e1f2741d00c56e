#include "runtime/generate/generate.h"

#include <chrono>

#include "runtime/generate/token_stream.h"

namespace strata {

GenerateResult generate(CausalLM& lm, Sequence& seq, const Tokenizer& tok, const VocabMask& mask,
                        std::span<const int32_t> prompt, const GenerationParams& params,
                        const std::function<bool(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  TokenStream stream(tok, mask, params);
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
    const TokenStream::Token t = stream.next(logits);
    ++r.generated;
    r.pending = t.id;
    if (t.eos) {
      r.finish_reason = "stop";
      r.eos = true;
      break;
    }
    go_on = on_text(t.text);
    if (t.stopped) {
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
    const int32_t one[1] = {t.id};
    const SequenceStep s{&seq, one, &logits, false};
    lm.forward_batch({&s, 1});
    r.pending = -1;
  }
  if (go_on) on_text(stream.flush());  // nothing after a stop string
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

std::vector<int32_t> prompt_ids(const Tokenizer& tok, const std::string& prompt, bool chat, const std::string& system) {
  if (chat) {
    std::vector<ChatMessage> msgs;
    if (!system.empty()) msgs.push_back({"system", system});
    msgs.push_back({"user", prompt});
    return tok.encode(tok.chat_prompt(msgs, true));  // the template starts with BOS
  }
  std::vector<int32_t> ids;
  if (tok.add_bos() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  for (int32_t id : tok.encode(prompt)) ids.push_back(id);
  return ids;
}

}  // namespace strata
